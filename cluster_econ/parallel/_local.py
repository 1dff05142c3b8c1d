"""Local executors of :mod:`cluster_econ.parallel`: a thread pool and a restartable process pool.

Processes are forked where the platform allows it (Linux) and this process runs no other thread:
workers inherit the modules already imported and the shared object, so nothing is pickled for
them. Otherwise they start from a fork server (or are spawned) and the shared object is unpickled
once per worker (the pool's initializer). At most ``workers + 1`` chunks are in flight at a
time, so when a worker dies the tasks it may have been running are known: the pool is restarted,
those run again one at a time (a later death is then theirs alone), and the others go on.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import threading
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
    """Fork when this process runs no other thread (forking a threaded process can copy a lock
    that another thread holds); else a fork server, or spawn where neither exists."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "pandas", "cluster_econ.parallel"])  # imported once, by the server
        return ctx
    return multiprocessing.get_context("spawn")


def run_processes(fn: Callable[..., Any], calls: Sequence[Any], workers: int, shared: Any, size: int,
                  retries: int, tick: Callable[[int], None], blas_threads: int | None) -> _api.TaskRun:
    """Tasks in worker processes, restarting the pool when a worker dies (see the module docstring).

    The chunks in flight when a worker died are suspects: they are run again one at a time, so
    that a death while a suspect runs alone is its own. A suspect fails (with a
    :class:`~cluster_econ.parallel.TaskFailure` for each of its tasks) once it has been lost more
    than ``retries`` times and killed its worker alone; the others simply run again.
    """
    ctx = _context()
    forked = ctx.get_start_method() == "fork"
    token = next(_TOKENS)
    chunks = _chunks(calls, size)
    pending = deque(range(len(chunks)))
    suspects: deque[int] = deque()
    attempts = [0] * len(chunks)
    results: dict[int, Any] = {}
    events: list[str] = []
    reruns = 0
    ref = _api._Token(token) if shared is not None else _api._Direct(None)
    if forked and shared is not None:
        _api._SHARED[token] = shared  # inherited by the forked workers
    if forked:
        gc.freeze()  # inherited objects out of the collector's reach: its sweeps would copy every page
    try:
        while pending or suspects:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_process,
                                       initargs=(token, None if forked else shared, blas_threads))
            inflight: dict[Future[Any], int] = {}
            lost: list[int] = []
            alone = False
            try:
                while (pending or suspects or inflight) and not lost:
                    if suspects:
                        if not inflight:  # a suspect runs alone
                            ci = suspects.popleft()
                            inflight[pool.submit(_api._run_chunk, fn, chunks[ci], ref)] = ci
                            alone = True
                    else:
                        alone = False
                        while pending and len(inflight) < workers + 1:
                            ci = pending.popleft()
                            inflight[pool.submit(_api._run_chunk, fn, chunks[ci], ref)] = ci
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        ci = inflight.pop(fut)
                        try:
                            out = fut.result()
                        except BrokenProcessPool:
                            lost.append(ci)
                            continue
                        except Exception as exc:  # the chunk's results could not come back (pickling)
                            out = [(i, _api.failure_of(i, exc)) for i, _, _ in chunks[ci]]
                        for i, value in out:
                            results[i] = value
                        tick(len(out))
                lost += list(inflight.values())
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            if not lost:
                continue
            lost = sorted(set(lost))
            n_tasks = sum(len(chunks[ci]) for ci in lost)
            failed = 0
            for ci in lost:
                attempts[ci] += 1
                if alone and attempts[ci] > retries:
                    for i, _, _ in chunks[ci]:
                        results[i] = _api.TaskFailure(
                            i, f"worker process died while running this task ({attempts[ci]} attempts)")
                    tick(len(chunks[ci]))
                    failed += len(chunks[ci])
                else:
                    suspects.append(ci)
                    reruns += len(chunks[ci])
            events.append(f"a worker process died while {n_tasks} task(s) were in flight; the pool was restarted"
                          + (f" and {n_tasks - failed} of them were rerun" if n_tasks > failed else "")
                          + (f"; {failed} failed, having killed their worker {retries + 1} times" if failed else ""))
    finally:
        _api._SHARED.pop(token, None)
        if forked:
            gc.unfreeze()
    return _api.TaskRun(_ordered(results, len(calls)), "processes", workers, reruns, events)

