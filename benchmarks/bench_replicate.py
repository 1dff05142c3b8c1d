"""Time ``cluster-econ replicate --all`` and a batch report (serial, 2 workers, from the cache).

There is no peer program for these commands; the script prints wall-clock seconds per exhibit,
the whole replication run (the target is under a minute on a 2-core machine), and the ratios of
the batch report's parallel and cached runs to its serial run.

Run: ``python benchmarks/bench_replicate.py`` (writes into a temporary folder).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from cluster_econ.report.batch import run_report
from cluster_econ.report.replicate import replication_root, run


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcomes = run(out=Path(tmp) / "replication_output")
        total = time.perf_counter() - t0
        for o in outcomes:
            status = "skipped" if o.skipped else ("pass" if o.passed else "FAIL")
            print(f"{o.name:24s} {o.seconds:6.2f} s  {status}  ({len(o.checks)} checks)")
        print(f"replicate --all (in process, data loaded once): {total:.2f} s")

        config = replication_root() / "report_demo.yaml"
        times = {}
        for label, workers, folder in (("serial", 1, "a"), ("2 workers", 2, "b"), ("cached", 2, "b")):
            t0 = time.perf_counter()
            summary = run_report(config, Path(tmp) / folder, workers=workers, progress=False)
            times[label] = time.perf_counter() - t0
            print(f"report_demo {label:10s} {times[label]:6.2f} s  ({summary.computed} computed, "
                  f"{summary.cache_hits} cached, {summary.n_failed} failed)")
        print(f"ratio 2 workers / serial: {times['2 workers'] / times['serial']:.2f}; "
              f"cached / serial: {times['cached'] / times['serial']:.2f}")


if __name__ == "__main__":
    main()
