"""Normalize a generated 1M-row enterprise-year .dta to a Parquet panel, beside the pandas baseline.

Baseline: ``pandas.read_stata`` + ``DataFrame.to_parquet`` of the same file. Each side runs in its own
child process (same machine, same run) so that peak resident memory is measured per side. Prints the
time ratio and each side's peak memory relative to the in-memory size of the data.

Each side imports the libraries its work uses before the clock starts (pandas and pyarrow for the
baseline; for cluster_econ also the modules normalize loads lazily and their libraries: pyreadstat for
Stata labels, jsonschema for the mapping check), so that both times are of the work alone. With
``--repeat N`` each side runs N times, alternating, and the medians are reported.

Goals (issue: foundation): time no more than the baseline's; peak memory at most 3x the data.

    python benchmarks/bench_normalize.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

MAPPING = """\
spec_version: 1
name: bench
columns:
  enterprise_id: {from: firm}
  cluster_id: {from: cluster}
  country: {const: KEN}
  year: {from: year}
  sales: {from: sales}
  material_cost: {from: materials}
  labour_cost: {from: wages}
  capital_stock: {from: capital}
  employment: {from: workers}
  new_product: {from: newprod, recode: {1: true, 2: false}}
  export_share: {from: exports}
"""


def make_file(path: Path, rows: int) -> int:
    rng = np.random.default_rng(0)
    years = 10
    firms = rows // years
    df = pd.DataFrame(
        {
            "firm": np.repeat(np.arange(firms), years).astype("int32"),
            "cluster": (np.repeat(np.arange(firms), years) % 50).astype("int16"),
            "year": np.tile(np.arange(2000, 2000 + years), firms).astype("int16"),
            "sales": rng.lognormal(10, 1, firms * years),
            "materials": rng.lognormal(9, 1, firms * years),
            "wages": rng.lognormal(8, 1, firms * years),
            "capital": rng.lognormal(11, 1, firms * years),
            "workers": rng.integers(1, 500, firms * years).astype("int32"),
            "newprod": rng.choice(np.array([1, 2, -9], dtype="int8"), firms * years),
            "exports": rng.uniform(0, 100, firms * years),
        }
    )
    df.to_stata(path, write_index=False)
    return int(df.memory_usage(deep=True).sum())


# (imports, work): the peak resident memory is read after the imports and again after the work
CHILD = {
    "pandas": (
        "import pandas as pd, pyarrow.parquet",
        "pd.read_stata(sys.argv[1]).to_parquet(sys.argv[2] + '/b.parquet')",
    ),
    "cluster_econ": (
        "import cluster_econ as ce, cluster_econ.harmonize.pipeline, cluster_econ.io.parquet, "
        "cluster_econ.schema.validate, cluster_econ.panel.derive, pyarrow.parquet, pyreadstat, jsonschema",
        "ce.normalize(sys.argv[1], mapping=sys.argv[3]).to_parquet(sys.argv[2] + '/panel')",
    ),
}


def run_child(name: str, dta: Path, out: Path, mapping: Path) -> dict[str, float]:
    imports, work = CHILD[name]
    code = (
        f"import resource, time, json, sys\n{imports}\n"
        "import os\nbase = int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024\n"
        "t0 = time.perf_counter()\n"
        f"{work}\n"
        "print(json.dumps({'seconds': time.perf_counter() - t0, 'import_kib': base, "
        "'peak_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(dta), str(out), str(mapping)], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(rs: list[dict[str, float]]) -> dict[str, float]:
    """Median of each measure over the runs (taken separately for each measure)."""
    return {k: float(np.median([r[k] for r in rs])) for k in rs[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; medians are reported")
    args = ap.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"pandas": [], "cluster_econ": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        dta = tmp_path / "ey.dta"
        mapping = tmp_path / "bench.yaml"
        mapping.write_text(MAPPING)
        nbytes = make_file(dta, args.rows)
        for _ in range(max(args.repeat, 1)):
            for name in runs:
                runs[name].append(run_child(name, dta, tmp_path, mapping))
    base, ours = _median(runs["pandas"]), _median(runs["cluster_econ"])
    data_mib = nbytes / 2**20
    print(f"rows: {args.rows:,d}; data in memory: {data_mib:.0f} MiB; runs per side: {len(runs['pandas'])}")
    if len(runs["pandas"]) > 1:
        for name, rs in runs.items():
            print(f"  {name} seconds per run: " + ", ".join(f"{r['seconds']:.2f}" for r in rs))
    for name, r in (("pandas read_stata + to_parquet", base), ("cluster_econ normalize + to_parquet", ours)):
        peak, work = r["peak_kib"] / 1024, (r["peak_kib"] - r["import_kib"]) / 1024
        print(
            f"{name:38s} {r['seconds']:7.2f} s   peak RSS {peak:6.0f} MiB, above imports {work:6.0f} MiB "
            f"({work / data_mib:.1f}x data)"
        )
    print(f"time ratio cluster_econ / pandas baseline: {ours['seconds'] / base['seconds']:.2f} (goal <= 1.0)")
    work = (ours["peak_kib"] - ours["import_kib"]) / 1024
    print(
        f"memory above imports / data size: {work / data_mib:.1f}x (goal <= 3x; baseline "
        f"{(base['peak_kib'] - base['import_kib']) / 1024 / data_mib:.1f}x)"
    )


if __name__ == "__main__":
    main()
