"""Local executors of :mod:`cluster_econ.parallel`: a thread pool and a restartable process pool.

Processes are forked where the platform allows it (Linux): workers inherit the modules already
imported and the shared object, so nothing is pickled for them. Elsewhere they are spawned and
the shared object is unpickled once per worker (the pool's initializer). At most ``workers + 1``
chunks are in flight at a time, so when a worker dies the tasks it may have been running are
known: the pool is restarted and only those are rerun.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from cluster_econ import parallel as _api

_TOKENS = itertools.count(1)


def _chunks(calls: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(calls[i:i + size]) for i in range(0, len(calls), size)]


def _ordered(results: dict[int, Any], n: int) -> list[Any]:
    return [results[i] for i in range(n)]


def run_threads(fn: Callable[..., Any], calls: Sequence[Any], workers: int, shared: Any, size: int,
                tick: Callable[[int], None]) -> _api.TaskRun:
    """Tasks in a thread pool: for numpy work that releases the GIL (no copies of the data)."""
    results: dict[int, Any] = {}
    ref = _api._Direct(shared)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cluster_econ") as pool:
        futures = [pool.submit(_api._run_chunk, fn, chunk, ref) for chunk in _chunks(calls, size)]
        for fut in as_completed(futures):  # every chunk catches its own tasks' errors
            out = fut.result()
            for i, value in out:
                results[i] = value
            tick(len(out))
    return _api.TaskRun(_ordered(results, len(calls)), "threads", workers)


def _init_process(token: int, shared: Any, blas_threads: int | None) -> None:
    """Worker start: mark the process as a worker (no nested pools), hold the shared object
    (spawned workers only; forked ones inherited it) and set its BLAS threads."""
    _api._PROCESS_WORKER["active"] = True
    if shared is not None:
        _api._SHARED[token] = shared
    _api.set_blas_threads(blas_threads)


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_processes(fn: Callable[..., Any], calls: Sequence[Any], workers: int, shared: Any, size: int,
                  retries: int, tick: Callable[[int], None], blas_threads: int | None) -> _api.TaskRun:
    """Tasks in worker processes, restarting the pool when a worker dies (see the module docstring)."""
    ctx = _context()
    forked = ctx.get_start_method() == "fork"
    token = next(_TOKENS)
    chunks = _chunks(calls, size)
    pending = deque(range(len(chunks)))
    attempts = [0] * len(chunks)
    results: dict[int, Any] = {}
    events: list[str] = []
    reruns = 0
    if forked and shared is not None:
        _api._SHARED[token] = shared  # inherited by the forked workers
    try:
        while pending:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_process,
                                       initargs=(token, None if forked else shared, blas_threads))
            inflight: dict[Future[Any], int] = {}
            broken: list[int] = []
            try:
                while (pending or inflight) and not broken:
                    while pending and len(inflight) < workers + 1:
                        ci = pending.popleft()
                        ref = _api._Token(token) if shared is not None else _api._Direct(None)
                        inflight[pool.submit(_api._run_chunk, fn, chunks[ci], ref)] = ci
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        ci = inflight.pop(fut)
                        try:
                            out = fut.result()
                        except BrokenProcessPool:
                            broken.append(ci)
                            continue
                        except Exception as exc:  # the chunk's results could not come back (pickling)
                            out = [(i, _api.failure_of(i, exc)) for i, _, _ in chunks[ci]]
                        for i, value in out:
                            results[i] = value
                        tick(len(out))
                if broken:
                    broken += list(inflight.values())
                    inflight.clear()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            if broken:
                lost = sorted(set(broken))
                n_tasks = sum(len(chunks[ci]) for ci in lost)
                again = []
                for ci in lost:
                    attempts[ci] += 1
                    if attempts[ci] > retries:
                        for i, _, _ in chunks[ci]:
                            results[i] = _api.TaskFailure(
                                i, f"worker process died while running this task ({attempts[ci]} attempts)")
                        tick(len(chunks[ci]))
                    else:
                        again.append(ci)
                        reruns += len(chunks[ci])
                n_again = sum(len(chunks[c]) for c in again)
                events.append(f"a worker process died while {n_tasks} task(s) were in flight; the pool was restarted"
                              + (f" and {n_again} of them were rerun" if n_again else
                                 f" and {n_tasks - n_again} of them failed after {retries + 1} attempts"))
                pending.extendleft(reversed(again))
    finally:
        _api._SHARED.pop(token, None)
    return _api.TaskRun(_ordered(results, len(calls)), "processes", workers, reruns, events)

