"""One parallel map for the whole package: local threads or processes, or a Dask cluster.

Every parallel loop in cluster_econ (batch reports, ``feols_many``, the wild bootstrap, Monte
Carlo and randomization inference) goes through :func:`map_tasks` or :func:`run_tasks`, so that
all of them share one contract::

    from cluster_econ.parallel import map_tasks

    def fit_one(task, shared, rng):          # module-level, so that it can be pickled
        ...

    results = map_tasks(fit_one, tasks, shared=data, seed=2024)

Contract
--------
``fn(task)`` is called once per task, with two optional keyword arguments:

``shared=obj``
    when ``shared`` is given: one object (the data) shipped **once per worker**, not once per
    task: forked processes inherit it, spawned processes unpickle it once, each Dask worker
    receives it once (``Client.scatter(..., broadcast=True)``), threads see the same object.
``rng=numpy.random.Generator``
    when ``seed`` is given: task ``i`` gets ``default_rng(SeedSequence(seed).spawn(n)[i])``
    (:func:`task_seeds`). The stream of a task depends only on ``seed`` and ``i``, never on the
    executor, the number of workers or the order in which tasks finish, so a parallel run
    returns exactly what the serial run returns.

Results come back in task order. ``kind`` picks the local executor: ``"processes"`` (default;
for Python-level work that holds the GIL), ``"threads"`` (numpy and BLAS work that releases the
GIL; no data are copied) or ``"serial"``. ``workers`` defaults to :func:`default_workers`: the
``CLUSTER_ECON_WORKERS`` environment variable if set, else the CPUs this process may use, and 1
inside a worker of another map (pools never nest). ``scheduler="tcp://host:8786"`` (or
``dask://host:8786``, or a ``distributed.Client``) sends the tasks to an existing Dask
distributed cluster instead (the optional ``dask`` extra: ``pip install "cluster-econ[dask]"``).

Every task runs with ``blas_threads`` BLAS threads (default 1, set with :mod:`threadpoolctl`),
whatever the executor: the last bits of a matrix product depend on how many threads computed it,
so this is what makes a parallel run byte-identical to the serial one (and keeps the workers
from oversubscribing the cores).

Failures stay with their task. :func:`run_tasks` returns a :class:`TaskRun` whose results hold a
:class:`TaskFailure` (error and traceback) in place of each failed task; :func:`map_tasks`
returns plain results and raises :class:`TaskError` for the first failure, after every task ran.
A worker that dies (killed, out of memory) does not end the run: a local process pool is
restarted and the tasks it was running are rerun (``retries`` times, then they fail with "worker
process died"); a Dask scheduler reschedules them itself. ``TaskRun.reruns`` and
``TaskRun.events`` report it.

Why our own code: :mod:`concurrent.futures` does not restart a broken process pool, seed tasks or
ship data once per worker, and calling ``distributed`` directly would make it a hard dependency;
this module is the thin layer that gives both the same contract.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster_econ.errors import ClusterEconError

__all__ = ["TaskError", "TaskFailure", "TaskRun", "dask_client", "default_workers", "format_traceback", "in_worker",
           "map_tasks", "run_tasks", "task_seeds"]

KINDS = ("processes", "threads", "serial")
_FLAGS = threading.local()
_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PROCESS_WORKER = {"active": False}


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised (or whose worker died): its index, ``"Type: message"`` and traceback."""

    index: int
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        return self.error


class TaskError(ClusterEconError):
    """Raised by :func:`map_tasks` when a task failed; ``failure`` is its :class:`TaskFailure`."""

    def __init__(self, failure: TaskFailure, n_failed: int) -> None:
        more = f" ({n_failed - 1} more task(s) failed too)" if n_failed > 1 else ""
        super().__init__(f"task {failure.index} failed: {failure.error}{more}\n{failure.traceback}".rstrip())
        self.failure = failure


@dataclass
class TaskRun:
    """What :func:`run_tasks` did: ``results`` in task order (a :class:`TaskFailure` in place of
    each failed task), the executor used, tasks rerun after a worker died, and events (worker
    deaths, pool restarts) in plain words."""

    results: list[Any]
    executor: str
    workers: int
    reruns: int = 0
    events: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[TaskFailure]:
        return [r for r in self.results if isinstance(r, TaskFailure)]


def in_worker() -> bool:
    """True inside a task run by :func:`map_tasks` (in a worker process or pool thread)."""
    return _PROCESS_WORKER["active"] or bool(getattr(_FLAGS, "active", False))


def default_workers() -> int:
    """Workers used when none are asked for: ``CLUSTER_ECON_WORKERS`` if set (a positive integer),
    else the CPUs this process may run on; 1 inside a task of another map (no nested pools)."""
    if in_worker():
        return 1
    env = os.environ.get("CLUSTER_ECON_WORKERS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ClusterEconError(f"CLUSTER_ECON_WORKERS must be a positive integer, not {env!r}") from None
        if n < 1:
            raise ClusterEconError(f"CLUSTER_ECON_WORKERS must be a positive integer, not {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def task_seeds(seed: int | Sequence[int] | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent seed sequences for tasks ``0..n-1``: ``SeedSequence(seed).spawn(n)``.

    Child ``i`` depends only on ``seed`` and ``i`` (its spawn key), so task ``i`` draws the same
    numbers however the tasks are split between workers.
    """
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n)


def run_tasks(fn: Callable[..., Any], tasks: Iterable[Any], *, workers: int | None = None,
              scheduler: Any = None, kind: str = "processes", shared: Any = None,
              seed: int | Sequence[int] | np.random.SeedSequence | None = None, chunksize: int | None = None,
              retries: int = 2, progress: bool | Callable[[int], None] = False,
              desc: str = "tasks", blas_threads: int | None = 1) -> TaskRun:
    """Run ``fn`` on every task (see the module docstring); never raises for a failing task.

    Parameters
    ----------
    fn : callable
        ``fn(task[, shared=...][, rng=...])``; module-level for processes and Dask (pickled).
    tasks : iterable
        The tasks (picklable for processes and Dask).
    workers : int, optional
        Local workers (default :func:`default_workers`); ignored with ``scheduler``.
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (``tcp://``, ``tls://``, ``dask://``) or a connected Client.
    kind : ``"processes"``, ``"threads"`` or ``"serial"``
        Local executor (ignored with ``scheduler``).
    shared : object, optional
        Data passed to every call as ``shared=``, shipped once per worker.
    seed : int, sequence of int or SeedSequence, optional
        Root seed; task ``i`` gets ``rng=default_rng(task_seeds(seed, n)[i])``.
    chunksize : int, optional
        Tasks sent to a worker at once (default: about 32 chunks per worker, or per thread of a
        Dask cluster, at least 1).
    retries : int
        Extra attempts for tasks whose local worker process died.
    progress : bool or callable
        True shows a progress bar (stderr); a callable receives the number of finished tasks.
    desc : str
        Label of the progress bar and of the Dask task keys.
    blas_threads : int or None
        BLAS threads while tasks run (default 1: identical results on every executor); None
        leaves BLAS as it is.

    Returns
    -------
    TaskRun
    """
    items = list(tasks)
    n = len(items)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if workers is not None and (not isinstance(workers, int | np.integer) or workers < 1):
        raise ValueError(f"workers must be a positive integer, not {workers!r}")
    seeds = task_seeds(seed, n) if seed is not None else [None] * n
    calls = [(i, items[i], seeds[i]) for i in range(n)]
    n_workers = int(workers) if workers is not None else default_workers()
    bar, tick = _progress(progress, n, desc)
    try:
        if scheduler is not None:
            from cluster_econ.parallel._dask import run_dask

            return run_dask(fn, calls, scheduler, shared, chunksize, tick, desc, blas_threads)
        if kind == "serial" or n_workers == 1 or n <= 1:
            with blas_limit(blas_threads):
                results = _run_chunk(fn, calls, _Direct(shared), serial=True, tick=tick)
            return TaskRun([r for _, r in sorted(results, key=lambda p: p[0])], "serial", 1)
        from cluster_econ.parallel._local import run_processes, run_threads

        size = _chunksize(chunksize, n, n_workers)
        if kind == "threads":
            with blas_limit(blas_threads):
                return run_threads(fn, calls, min(n_workers, n), shared, size, tick)
        return run_processes(fn, calls, min(n_workers, n), shared, size, retries, tick, blas_threads)
    finally:
        if bar is not None:
            bar.close()


def map_tasks(fn: Callable[..., Any], tasks: Iterable[Any], *, workers: int | None = None,
              scheduler: Any = None, kind: str = "processes", shared: Any = None,
              seed: int | Sequence[int] | np.random.SeedSequence | None = None, chunksize: int | None = None,
              progress: bool | Callable[[int], None] = False, desc: str = "tasks",
              blas_threads: int | None = 1) -> list[Any]:
    """``[fn(task, ...) for task in tasks]`` in parallel (see the module docstring).

    Same arguments as :func:`run_tasks`. Raises :class:`TaskError` naming the first failed task
    (in task order), with its traceback, once every task has run.
    """
    run = run_tasks(fn, tasks, workers=workers, scheduler=scheduler, kind=kind, shared=shared, seed=seed,
                    chunksize=chunksize, progress=progress, desc=desc, blas_threads=blas_threads)
    failures = run.failures
    if failures:
        raise TaskError(failures[0], len(failures))
    return run.results


@contextlib.contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A ``distributed.Client`` connected to ``scheduler`` (an address such as ``tcp://host:8786``
    or ``dask://host:8786``, or a Client, used as is), closed at the end if opened here.

    Raises :class:`~cluster_econ.errors.MissingDependencyError` naming the ``dask`` extra when
    ``distributed`` is not installed, and ClusterEconError when the scheduler cannot be reached.
    """
    from cluster_econ.parallel._dask import connect

    client, owned = connect(scheduler)
    try:
        yield client
    finally:
        if owned:
            client.close()


# -- shared by the executors ---------------------------------------------------------------------
_CONTROLLER: list[Any] = []


def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, found once per process (finding them
    scans the loaded libraries, which costs milliseconds)."""
    if not _CONTROLLER:
        import numpy  # noqa: F401 - numpy's BLAS must be loaded before it is looked for
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Context in which BLAS uses ``threads`` threads (no change for None)."""
    if threads is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=int(threads), user_api="blas")


def set_blas_threads(threads: int | None) -> None:
    """Set this (worker) process's BLAS threads for good (no change for None)."""
    if threads is not None:
        _blas_controller().limit(limits=int(threads), user_api="blas")
def _chunksize(chunksize: int | None, n: int, workers: int) -> int:
    if chunksize is not None:
        if chunksize < 1:
            raise ValueError(f"chunksize must be a positive integer, not {chunksize!r}")
        return int(chunksize)
    return max(1, n // (max(1, workers) * 32))


def _progress(progress: bool | Callable[[int], None], n: int, desc: str) -> tuple[Any, Callable[[int], None]]:
    """A progress bar (or the caller's callback) and the function that advances it by k tasks."""
    if callable(progress):
        done = [0]

        def tick_callback(k: int) -> None:
            done[0] += k
            progress(done[0])

        return None, tick_callback
    if not progress:
        return None, lambda k: None
    import sys

    bar = progress_bar(total=n, desc=desc, unit="task", file=sys.stderr)
    return bar, bar.update


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm progress bar without tqdm's monitor thread (so that worker processes can still be
    forked safely while it is shown)."""
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        monitor_interval = 0

    return _Bar(**kwargs)


class _Direct:
    """The shared object itself (threads, serial, Dask after the scatter resolved it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_SHARED: dict[int, Any] = {}  # per-process registry of shared objects by token (processes)


class _Token:
    """Reference to a shared object already in the worker process (inherited or unpickled once)."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token


def _resolve(ref: Any) -> Any:
    if isinstance(ref, _Token):
        return _SHARED[ref.token]
    if isinstance(ref, _Direct):
        return ref.value
    return ref  # Dask passes the scattered object itself


def _call(fn: Callable[..., Any], task: Any, shared: Any, has_shared: bool,
          seed: np.random.SeedSequence | None) -> Any:
    kwargs: dict[str, Any] = {}
    if has_shared:
        kwargs["shared"] = shared
    if seed is not None:
        kwargs["rng"] = np.random.default_rng(seed)
    return fn(task, **kwargs)


def _run_chunk(fn: Callable[..., Any], calls: Sequence[tuple[int, Any, Any]], ref: Any, serial: bool = False,
               tick: Callable[[int], None] | None = None, blas: int | None = None) -> list[tuple[int, Any]]:
    """Run ``(index, task, seed)`` calls; a failing task becomes a :class:`TaskFailure`.
    ``blas`` (Dask workers) sets the worker's BLAS threads first."""
    set_blas_threads(blas)
    shared = _resolve(ref)
    has_shared = shared is not None
    out = []
    previous = getattr(_FLAGS, "active", False)
    if not serial:
        _FLAGS.active = True
    try:
        for i, task, seed in calls:
            try:
                out.append((i, _call(fn, task, shared, has_shared, seed)))
            except Exception as exc:
                out.append((i, failure_of(i, exc)))
            if tick is not None:
                tick(1)
    finally:
        _FLAGS.active = previous
    return out


def failure_of(index: int, exc: BaseException) -> TaskFailure:
    """A :class:`TaskFailure` from an exception, with its traceback (file paths relative to the
    folder on ``sys.path`` they were imported from, so that the text does not depend on where the
    package is installed)."""
    return TaskFailure(index, f"{type(exc).__name__}: {exc}", format_traceback(exc))


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with file names relative to their ``sys.path`` entry."""
    import sys
    import traceback

    roots = sorted({os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)}, key=len, reverse=True)
    frames = traceback.extract_tb(exc.__traceback__)
    while len(frames) > 1 and os.path.abspath(frames[0].filename).startswith(_HERE):
        frames = traceback.StackSummary.from_list(frames[1:])  # the executor's own frames
    for frame in frames:
        path = os.path.abspath(frame.filename)
        for root in roots:
            if path.startswith(root + os.sep):
                frame.filename = os.path.relpath(path, root)
                break
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames),
             *traceback.format_exception_only(type(exc), exc)]
    return "".join(lines)
