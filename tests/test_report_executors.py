"""The parallel map and batch reports on every executor: in this process, in local worker processes and on a real Dask
cluster (a scheduler and two worker processes on loopback), with byte-identical outputs, the cache
shared between executors, the data read by path, and a worker killed mid-run.

The specifications use cluster-robust CRV1 (Stata small-sample correction) and HC1 standard
errors; the tests check the executors, not the estimators (tested elsewhere).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cluster_econ.parallel import map_tasks, run_tasks
from cluster_econ.report.batch import run_report
from cluster_econ.report.command import register

CFG = {
    "title": "executors",
    "data": "demo",
    "seed": 3,
    "phase_profile": False,
    "specifications": [
        {"name": "innovation", "formula": "new_product ~ schooling_years + log(employment) | cluster_id + year",
         "estimator": "feols", "vcov": {"CRV1": "cluster_id"}},
        {"name": "size", "formula": "log(employment) ~ schooling_years", "estimator": "feols", "vcov": "HC1"},
        {"name": "broken", "formula": "new_product ~ no_such_column", "estimator": "logit"},
    ],
    "subsets": [{"name": "asia", "where": {"country": ["JPN", "TWN", "CHN"]}}],
    "outputs": ["html", "latex", "xlsx"],
}


def _write(tmp: Path, cfg: dict) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".cache" not in p.parts}


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cluster-econ")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module", autouse=True)
def cache_secret_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("xdg_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, cache_secret_home: Path) -> tuple[Path, Path, object]:
    """The configuration run in this process (workers=1): the reference outputs."""
    tmp = tmp_path_factory.mktemp("embedded")
    cfg = _write(tmp, CFG)
    summary = run_report(cfg, tmp / "out", workers=1, progress=False)
    return cfg, tmp / "out", summary


def test_local_processes_give_the_same_bytes(tmp_path: Path, embedded: tuple[Path, Path, object]) -> None:
    cfg, ref, ref_summary = embedded
    assert ref_summary.executor == "this process" and ref_summary.computed == 6
    assert [f[1] for f in ref_summary.failed] == ["broken", "broken"]
    summary = run_report(cfg, tmp_path / "out", workers=2, progress=False)
    assert summary.executor == "2 local processes" and summary.computed == 6
    assert _files(tmp_path / "out") == _files(ref)
    # the failing job's traceback is in the report, with paths that do not depend on the machine
    text = (ref / "report.html").read_text(encoding="utf-8")
    assert text.count("<details><summary>traceback</summary>") == 2 and "no_such_column" in text
    assert "Traceback (most recent call last):" in text and "cluster_econ/report/jobs.py" in text
    assert str(Path.cwd()) not in text


def test_dask_cluster_gives_the_same_bytes(tmp_path: Path, embedded: tuple[Path, Path, object],
                                           dask_cluster: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, ref, _ = embedded
    address = dask_cluster.replace("tcp://", "dask://")
    code = _cli(["report", str(cfg), "--out", str(tmp_path / "out"), "--scheduler", address, "--workers", "1",
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1  # the broken specification
    assert "6 computed" in printed and "dask tcp://127.0.0.1" in printed and "data scattered" in printed
    assert _files(tmp_path / "out") == _files(ref)


def test_cache_works_across_executors(tmp_path: Path, embedded: tuple[Path, Path, object], dask_cluster: str) -> None:
    cfg, ref, _ = embedded
    work = tmp_path / "out"
    shutil.copytree(ref, work)
    again = run_report(cfg, work, scheduler=dask_cluster, workers=1, progress=False)
    # the successful jobs come from the embedded run's cache; only the failed ones (never cached) rerun
    assert (again.cache_hits, again.computed) == (4, 2)
    assert _files(work) == _files(ref)


def test_workers_read_the_parquet_panel_by_path(tmp_path: Path, dask_cluster: str) -> None:
    from cluster_econ.datasets import demo

    demo().to_parquet(tmp_path / "panel")
    cfg = _write(tmp_path, {**CFG, "data": "panel", "specifications": CFG["specifications"][:2], "subsets": [],
                            "outputs": ["latex"]})
    local = run_report(cfg, tmp_path / "local", workers=1, progress=False)
    remote = run_report(cfg, tmp_path / "remote", scheduler=dask_cluster, workers=1, progress=False)
    assert local.n_failed == remote.n_failed == 0
    assert "data read by path" in remote.executor
    assert _files(tmp_path / "remote") == _files(tmp_path / "local")


def test_a_killed_dask_worker_is_survived_and_reported(tmp_path: Path, embedded: tuple[Path, Path, object],
                                                       dask_cluster: str) -> None:
    distributed = pytest.importorskip("distributed")
    cfg, ref, _ = embedded
    box: dict[str, object] = {}

    def run() -> None:
        box["summary"] = run_report(cfg, tmp_path / "out", scheduler=dask_cluster, workers=1, progress=False)

    thread = threading.Thread(target=run)
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        thread.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and thread.is_alive():
            for worker, keys in client.processing().items():
                if any(str(k).startswith("cluster_econ-report") for k in keys):
                    victim = worker
                    break
            time.sleep(0.01)
        assert victim is not None, "no job of the report was seen running"
        os.kill(pids[victim], signal.SIGKILL)  # the nanny starts a new worker process
        thread.join(timeout=300)
    summary = box["summary"]
    assert summary.reruns >= 1 and summary.computed == 6
    assert any(f"Dask worker {victim} left unexpectedly" in e for e in summary.events)
    assert "WORKER  Dask worker" in summary.text()
    assert [f[1] for f in summary.failed] == ["broken", "broken"]  # only the specification that cannot run
    assert _files(tmp_path / "out") == _files(ref)


def _draw(task: int, shared: dict, rng: np.random.Generator) -> tuple[int, int, float, int]:
    return task, shared["offset"] + task, float(rng.normal()), os.getpid()


def _fail_on_three(task: int) -> int:
    if task == 3:
        raise ValueError(f"bad task {task}")
    return task


def test_map_on_a_dask_cluster_equals_the_serial_map(dask_cluster: str) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
    try:
        serial = map_tasks(_draw, range(12), workers=1, shared={"offset": 5}, seed=3)
        run = run_tasks(_draw, range(12), scheduler=dask_cluster, shared={"offset": 5}, seed=3, chunksize=2)
        failing = run_tasks(_fail_on_three, range(5), scheduler=dask_cluster)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert run.executor.startswith("dask tcp://") and not run.failures
    assert [r[:3] for r in run.results] == [r[:3] for r in serial]
    assert os.getpid() not in {r[3] for r in run.results}
    (failure,) = failing.failures
    assert failure.index == 3 and failure.error == "ValueError: bad task 3" and "_fail_on_three" in failure.traceback


@pytest.mark.slow
def test_workers_started_without_fork_give_the_same_bytes(tmp_path: Path,
                                                          embedded: tuple[Path, Path, object]) -> None:
    """With another thread running in this process, workers come from a fork server and receive
    the data by pickle (as on macOS and Windows): the same report."""
    from cluster_econ.parallel._local import _context

    cfg, ref, _ = embedded
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert _context().get_start_method() != "fork"
        summary = run_report(cfg, tmp_path / "out", workers=2, progress=False)
    finally:
        stop.set()
        thread.join()
    assert summary.executor == "2 local processes" and summary.computed == 6
    assert _files(tmp_path / "out") == _files(ref)


def test_jobs_are_grouped_by_subset_and_kind() -> None:
    from cluster_econ.report.jobs import group_jobs

    todo = [{"subset": s, "kind": k, "key": f"{s}{k}{i}"} for s in ("all", "asia") for k in ("spec", "proposition")
            for i in range(3)]
    groups = group_jobs(todo, 2)
    assert [[j["key"] for j in g] for g in groups] == [
        ["allspec0", "allspec1"], ["allspec2"], ["allproposition0", "allproposition1"], ["allproposition2"],
        ["asiaspec0", "asiaspec1"], ["asiaspec2"], ["asiaproposition0", "asiaproposition1"], ["asiaproposition2"]]
