"""Benchmark: batch reports on every executor.

1. ``replication/report_demo.yaml`` (15 jobs: 3 specifications and 2 propositions on 3 subsets,
   tables in four formats, figures) as a user runs it, ``cluster-econ report`` in a fresh
   process with an empty output folder, on 1 worker, 2 workers, all local cores and a 2-worker
   Dask cluster (a scheduler and two worker processes on loopback, started once as separate
   programs in their own sessions, as an existing cluster would be; its workers are restarted
   before each run, so that no imported module or data carries over). The runs are
   interleaved (1, 2, all, dask, 1, 2, ...) because the machine is shared; medians, the spread
   and the load average seen around the runs are printed, with the speed-up of each against 1
   worker and the time split into preparing, jobs and rendering.
2. A simulated report of 200 subsets x 20 specifications (4,020 jobs with the full data) on the
   demo universe: throughput (jobs per second) and the executor's cost per job, measured as
   ``(job phase wall time x workers - summed run time of the jobs) / jobs``, on the embedded
   executor (local processes) and on the Dask cluster.

Run: python benchmarks/bench_report_executors.py [--repeats 5] [--skip-many] [--worker-sessions]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
if sys.argv[5] == "1":  # each local worker process in its own session (see --worker-sessions)
    import cluster_econ.parallel._local as local
    _init = local._init_process
    def _own_session(*args):
        os.setsid()
        _init(*args)
    local._init_process = _own_session
from cluster_econ.report.batch import run_report
s = run_report(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), progress=False,
               scheduler=None if sys.argv[4] == "-" else sys.argv[4])
print(json.dumps({"wall": time.perf_counter() - t0, "timings": s.timings, "failed": s.n_failed,
                  "computed": s.computed, "executor": s.executor}))
"""


SESSIONS = {"own": False}


def run_child(config: Path, out: Path, workers: int, scheduler: str | None) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, str(config), str(out), str(workers),
                           scheduler or "-", "1" if SESSIONS["own"] else "0"], capture_output=True, text=True,
                          check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["process"] = time.perf_counter() - t0  # the whole process, imports included
    return info


def demo_report(repeats: int, cluster: str | None) -> None:
    from cluster_econ.parallel import default_workers
    from cluster_econ.report.replicate import replication_root

    config = replication_root() / "report_demo.yaml"
    cores = default_workers()
    variants = [("1 worker", 1, None), ("2 workers", 2, None)]
    if cores > 2:
        variants.append((f"all {cores} cores", cores, None))
    if cluster:
        variants.append(("Dask, 2 workers", 2, cluster))
    times: dict[str, list[float]] = {v[0]: [] for v in variants}
    parts: dict[str, list[dict]] = {v[0]: [] for v in variants}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep, (name, workers, sched) in itertools.product(range(repeats), variants):
            if sched:  # a cold cluster each time: no modules or data left from the previous run
                from distributed import Client

                with Client(sched, timeout="60s") as client:
                    client.restart()
            loads.append(os.getloadavg()[0])
            info = run_child(config, Path(tmp) / f"{rep}-{workers}-{bool(sched)}", workers, sched)
            assert info["failed"] == 0 and info["computed"] == 15, info
            times[name].append(info["process"])
            parts[name].append(info["timings"])
    loads.append(os.getloadavg()[0])
    print(f"[report_demo.yaml, 15 jobs, fresh process and empty output each run; {repeats} interleaved repeats; "
          f"1-min load average seen {min(loads):.1f}-{max(loads):.1f} on {cores} cores]")
    base = statistics.median(times["1 worker"])
    for name, ts in times.items():
        med = statistics.median(ts)
        split = {k: statistics.median(p[k] for p in parts[name]) for k in ("prepare", "jobs", "render")}
        print(f"  {name:16s} median {med:6.2f}s (min {min(ts):6.2f}, max {max(ts):6.2f})  speed-up vs 1 worker "
              f"{base / med:4.2f}x   [prepare {split['prepare']:.2f}s, jobs {split['jobs']:.2f}s, "
              f"render {split['render']:.2f}s]")


def many_jobs(cluster: str | None, workers: int) -> None:
    from cluster_econ.datasets import demo

    clusters = sorted(demo().enterprise["cluster_id"].astype(str).unique())
    combos = [list(c) for r in (2, 3) for c in itertools.combinations(clusters, r)][:200]
    regressors = ["schooling_years", "log(employment)", "log(capital_stock)", "management_score", "new_product"]
    specs = []
    for i, k in enumerate(itertools.product(regressors, ["", "| year", "| cluster_id + year", "| enterprise_id"])):
        if len(specs) == 20:
            break
        reg, fe = k
        specs.append({"name": f"s{i:02d}", "formula": f"log(sales) ~ {reg} {fe}".strip(), "estimator": "feols",
                      "vcov": "HC1" if not fe else {"CRV1": "cluster_id"}})
    cfg = {"data": "demo", "phase_profile": False, "outputs": ["latex"], "specifications": specs,
           "subsets": [{"name": f"sub{i:03d}", "where": {"cluster_id": c}} for i, c in enumerate(combos)]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        print(f"[simulated report: {len(combos)} subsets + the full data x {len(specs)} specifications = "
              f"{(len(combos) + 1) * len(specs)} jobs, LaTeX tables only]")
        whole = {}
        for name, w, sched in (("this process", 1, None), ("local processes", workers, None),
                               ("Dask, 2 workers", 2, cluster)):
            if name.startswith("Dask") and not cluster:
                continue
            if sched:
                from distributed import Client

                with Client(sched, timeout="60s") as client:
                    client.restart()
            load = os.getloadavg()[0]
            info = run_child(path, Path(tmp) / name.replace(" ", "_"), w, sched)
            tm = info["timings"]
            n = info["computed"]
            overhead = (tm["jobs"] * w - tm["job_seconds"]) / n
            whole[name] = info["process"]
            print(f"  {name:16s} ({w} workers, load {load:.1f}): job phase {tm['jobs']:.1f}s for {n} jobs = "
                  f"{n / tm['jobs']:.0f} jobs/s; jobs' own run time {tm['job_seconds']:.1f}s; executor cost per "
                  f"job {overhead * 1000:.1f} ms; whole run {info['process']:.1f}s (render {tm['render']:.1f}s, "
                  f"failed {info['failed']}), speed-up vs this process {whole['this process'] / info['process']:.2f}x")


def start_cluster(workers: int = 2) -> tuple[str, list[subprocess.Popen]]:
    """A Dask scheduler and ``workers`` single-threaded worker processes on loopback, started as
    separate programs in their own sessions, as the machines of an existing cluster would be."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "error"}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for _ in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                       "1", "--nworkers", "1", "--no-dashboard"], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-many", action="store_true")
    ap.add_argument("--workers", type=int, default=2, help="local workers of the 4,000-job report")
    ap.add_argument("--worker-sessions", action="store_true",
                    help="run each local worker process in its own session: on a shared Linux machine with "
                    "scheduler autogroups, all processes of one session share one session's CPU share, so "
                    "extra workers cannot go faster there; on an otherwise idle machine it makes no difference")
    args = ap.parse_args()
    SESSIONS["own"] = args.worker_sessions
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="bench_cache_"))
    try:
        import distributed
    except ImportError:
        distributed = None
        print("distributed is not installed: the Dask runs are skipped (pip install \"cluster-econ[dask]\")")
    address, procs = (start_cluster() if distributed is not None else (None, []))
    try:
        if not args.skip_demo:
            demo_report(args.repeats, address)
        if not args.skip_many:
            many_jobs(address, args.workers)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
