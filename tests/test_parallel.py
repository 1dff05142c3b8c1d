"""The shared parallel map (:mod:`cluster_econ.parallel`): order, shared data, per-task seeds,
failures with tracebacks, worker processes that die, nested maps, and a real Dask cluster.

No estimator is involved, so no standard-error convention applies here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cluster_econ.errors import ClusterEconError, MissingDependencyError
from cluster_econ.parallel import TaskError, TaskFailure, default_workers, in_worker, map_tasks, run_tasks, task_seeds


def _draw(task: int, shared: dict, rng: np.random.Generator) -> tuple[int, int, float, int]:
    return task, shared["offset"] + task, float(rng.normal()), os.getpid()


def _fail_on_three(task: int) -> int:
    if task == 3:
        raise ValueError(f"bad task {task}")
    return task


def _nested(task: int) -> tuple[bool, int]:
    return in_worker(), default_workers()


def _die_once(task: tuple[int, str]) -> int:
    value, marker = task
    if value == 2 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(7)  # the worker process dies mid-task
    return value * 10


def _always_die(task: int) -> int:
    if task == 1:
        os._exit(7)
    return task


@pytest.mark.parametrize("kind", ["serial", "threads", "processes"])
def test_results_in_order_with_shared_data_and_per_task_seeds(kind: str) -> None:
    tasks = list(range(23))
    out = map_tasks(_draw, tasks, workers=2, kind=kind, shared={"offset": 100}, seed=42, chunksize=3)
    assert [o[0] for o in out] == tasks and [o[1] for o in out] == [100 + t for t in tasks]
    # task i draws from default_rng(SeedSequence(42).spawn(n)[i]), whatever ran it
    expected = [float(np.random.default_rng(s).normal()) for s in task_seeds(42, len(tasks))]
    assert [o[2] for o in out] == expected
    if kind == "processes":
        assert 1 <= len({o[3] for o in out}) <= 2 and os.getpid() not in {o[3] for o in out}
    else:
        assert {o[3] for o in out} == {os.getpid()}


def test_seeds_do_not_depend_on_workers_or_chunks() -> None:
    a = map_tasks(_draw, range(10), workers=1, shared={"offset": 0}, seed=7)
    b = map_tasks(_draw, range(10), workers=2, shared={"offset": 0}, seed=7, chunksize=4)
    assert [x[2] for x in a] == [x[2] for x in b]
    c = map_tasks(_draw, range(10), workers=2, shared={"offset": 0}, seed=8)
    assert [x[2] for x in a] != [x[2] for x in c]


@pytest.mark.parametrize("kind", ["serial", "processes"])
def test_a_failing_task_is_isolated_with_its_traceback(kind: str) -> None:
    run = run_tasks(_fail_on_three, range(6), workers=2, kind=kind)
    assert [r for r in run.results if not isinstance(r, TaskFailure)] == [0, 1, 2, 4, 5]
    (failure,) = run.failures
    assert failure.index == 3 and failure.error == "ValueError: bad task 3"
    # the traceback starts in the task's own code, with a path relative to its sys.path entry
    lines = failure.traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and "test_parallel.py" in lines[1]
    assert "_fail_on_three" in lines[1] and not os.path.isabs(lines[1].split('"')[1])
    assert lines[-1] == "ValueError: bad task 3"
    with pytest.raises(TaskError, match=r"task 3 failed: ValueError: bad task 3") as err:
        map_tasks(_fail_on_three, range(6), workers=2, kind=kind)
    assert err.value.failure.index == 3


def test_no_nested_pools_inside_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTER_ECON_WORKERS", raising=False)
    assert not in_worker() and default_workers() >= 1
    for kind in ("threads", "processes"):
        assert set(map_tasks(_nested, range(4), workers=2, kind=kind)) == {(True, 1)}
    monkeypatch.setenv("CLUSTER_ECON_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("CLUSTER_ECON_WORKERS", "many")
    with pytest.raises(ClusterEconError, match="CLUSTER_ECON_WORKERS"):
        default_workers()


def test_a_dead_worker_process_is_replaced_and_its_task_rerun(tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    run = run_tasks(_die_once, [(i, marker) for i in range(6)], workers=2, chunksize=1)
    assert run.results == [0, 10, 20, 30, 40, 50] and not run.failures
    assert run.reruns >= 1 and Path(marker).exists()
    assert run.events and "worker process died" in run.events[0] and "rerun" in run.events[0]


def test_a_task_that_always_kills_its_worker_fails_alone() -> None:
    run = run_tasks(_always_die, range(5), workers=2, chunksize=1, retries=1)
    assert [r for r in run.results if not isinstance(r, TaskFailure)] == [0, 2, 3, 4]
    (failure,) = run.failures
    assert failure.index == 1 and "worker process died" in failure.error and "2 attempts" in failure.error


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind"):
        map_tasks(_nested, [1], kind="gpu")
    with pytest.raises(ValueError, match="workers"):
        map_tasks(_nested, [1], workers=0)
    assert map_tasks(_nested, []) == []


def test_missing_distributed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "cluster-econ\[dask\]"'):
        map_tasks(_nested, [1], scheduler="tcp://127.0.0.1:8786")
    assert issubclass(MissingDependencyError, ImportError)


def test_scheduler_addresses() -> None:
    from cluster_econ.parallel._dask import normalize_address

    assert normalize_address("dask://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert normalize_address("scheduler:8786") == "tcp://scheduler:8786"
    assert normalize_address("tls://a.b:8786") == "tls://a.b:8786"
    with pytest.raises(ClusterEconError, match="not a Dask scheduler address"):
        normalize_address("http://x y")


def test_unreachable_scheduler_is_a_clear_error() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(ClusterEconError, match=r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:9"):
        from cluster_econ.parallel._dask import connect

        connect("tcp://127.0.0.1:9", timeout="1s")


def test_feols_many_in_threads_equals_one_worker() -> None:
    """CRV1 by firm, fixest small-sample correction; the estimator itself is tested elsewhere."""
    import pandas as pd

    from cluster_econ.estimate import demean
    from cluster_econ.estimate.linear import feols_many

    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"firm": rng.integers(0, 300, n), "year": rng.integers(0, 8, n),
                       **{f"x{i}": rng.normal(size=n) for i in range(1, 5)}})
    df["y"] = df.x1 - 0.5 * df.x2 + rng.normal(size=n)
    fmls = [f"y ~ {' + '.join(f'x{j}' for j in range(1, k + 1))} | firm + year" for k in range(1, 5)] * 3
    demean.clear_cache()
    one = feols_many(fmls, df, vcov={"CRV1": "firm"}, ssc="fixest", workers=1)
    demean.clear_cache()
    two = feols_many(fmls, df, vcov={"CRV1": "firm"}, ssc="fixest", workers=2)
    for a, b in zip(one, two, strict=True):
        assert a.params.equals(b.params) and a.cov.equals(b.cov) and a.formula == b.formula


def test_wild_bootstrap_blocks_in_threads_equal_one_worker() -> None:
    """WCR, Rademacher and Webb weights: p-values and intervals do not depend on the threads."""
    import pandas as pd

    from cluster_econ.estimate.bootstrap import wild_bootstrap

    rng = np.random.default_rng(1)
    G, n = 60, 1800
    cl = rng.integers(0, G, n)
    df = pd.DataFrame({"cl": cl, "x": rng.normal(size=n), "d": (cl % 2) + rng.normal(size=n)})
    df["y"] = 0.1 * df.d + df.x + rng.normal(size=G)[cl] + rng.normal(size=n)
    for weights in ("rademacher", "webb"):
        runs = [wild_bootstrap("y ~ d + x", df, "d", "cl", B=9999, seed=5, weights=weights, workers=w)
                for w in (1, 2)]
        assert runs[0] == runs[1] and 0 < runs[0].p_value < 1
    # the blocks draw from streams spawned from the seed: another seed, other draws
    other = wild_bootstrap("y ~ d + x", df, "d", "cl", B=9999, seed=6, weights="webb", ci=False, workers=2)
    assert other.statistic == runs[0].statistic and other.p_value != runs[0].p_value


def test_processes_start_safely_while_another_thread_runs() -> None:
    """With a second thread alive, workers come from a fork server (not a fork of this threaded
    process) and receive the shared object by pickle: the same results."""
    import threading

    from cluster_econ.parallel._local import _context

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert _context().get_start_method() in ("forkserver", "spawn")
        out = map_tasks(_draw, range(6), workers=2, shared={"offset": 1}, seed=9)
    finally:
        stop.set()
        thread.join()
    assert out == [(t, 1 + t, float(np.random.default_rng(s).normal()), out[t][3])
                   for t, s in enumerate(task_seeds(9, 6))]
