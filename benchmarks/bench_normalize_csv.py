"""Stream a generated 10M-row enterprise-year CSV into a partitioned Parquet panel, beside DuckDB and
polars writing the same CSV to a partitioned Parquet dataset.

cluster_econ runs ``cluster-econ normalize big.csv -m map.yaml --out DIR --chunk-rows N
--partition-by country,survey_round`` (two passes over the file, chunk by chunk: mapping,
validation, duplicate and foreign-key checks, cluster-year aggregates, a manifest with every file's
hash); DuckDB runs ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet, PARTITION_BY ...)``
and polars ``scan_csv(...).sink_parquet(pl.PartitionBy(...))``: conversion only, no validation.
Each runs in its own child process, one after the other; the peak resident memory of each child is
read from the kernel (``os.wait4``). Goal (issue 10): cluster_econ's peak under 2 GiB.

    python benchmarks/bench_normalize_csv.py [--rows 10000000] [--chunk-rows 250000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MAPPING = """\
spec_version: 1
name: bench-csv
recodes:
  yes_no: {1: true, 2: false}
columns:
  enterprise_id: {from: firm}
  cluster_id: {from: cluster}
  country: {from: country}
  year: {from: year}
  survey_round: {from: round}
  sales: {from: sales}
  material_cost: {from: materials}
  labour_cost: {from: wages}
  capital_stock: {from: capital}
  employment: {from: workers}
  new_product: {from: newprod, recode: yes_no}
  export_share: {from: exports}
"""


def make_csv(path: Path, rows: int, years: int = 10, block: int = 1_000_000) -> int:
    """Write the CSV in blocks of rows (firms x years; 3 countries; 500 clusters); returns its size."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    firms = rows // years
    countries = np.array(["KEN", "ETH", "GHA"])
    with pacsv.CSVWriter(str(path), pa.schema([
        ("firm", pa.string()), ("cluster", pa.string()), ("country", pa.string()), ("year", pa.int16()),
        ("round", pa.string()), ("sales", pa.float64()), ("materials", pa.float64()), ("wages", pa.float64()),
        ("capital", pa.float64()), ("workers", pa.int32()), ("newprod", pa.int8()), ("exports", pa.float64()),
    ])) as writer:
        for start in range(0, firms * years, block):
            idx = np.arange(start, min(start + block, firms * years))
            firm, year = idx // years, 2000 + idx % years
            n = len(idx)
            writer.write_table(pa.table({
                "firm": pa.array(np.char.add("F", np.char.zfill(firm.astype(str), 7))),
                "cluster": pa.array(np.char.add("c", (firm % 500).astype(str))),
                "country": pa.array(countries[firm % 3]),
                "year": pa.array(year.astype(np.int16)),
                "round": pa.array(np.char.add("wave ", (year - 1999).astype(str))),
                "sales": rng.lognormal(10, 1, n).round(2), "materials": rng.lognormal(9, 1, n).round(2),
                "wages": rng.lognormal(8, 1, n).round(2), "capital": rng.lognormal(11, 1, n).round(2),
                "workers": pa.array(rng.integers(1, 500, n).astype(np.int32)),
                "newprod": pa.array(rng.choice(np.array([1, 2], dtype=np.int8), n)),
                "exports": rng.uniform(0, 100, n).round(1),
            }))
    return path.stat().st_size


def run(label: str, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a child to its end; its wall time and peak resident memory (kernel accounting)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{label} failed:\n{out}\n{err}")
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024, "out": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the CSV and outputs")
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv = work / f"ey_{args.rows}.csv"
        if not csv.exists():
            t0 = time.perf_counter()
            make_csv(csv, args.rows)
            print(f"wrote {csv.name} ({csv.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
        mapping = work / "bench.yaml"
        mapping.write_text(MAPPING)
        results = {}
        results["cluster_econ"] = run("cluster_econ", [
            sys.executable, "-m", "cluster_econ.cli", "normalize", str(csv), "-m", str(mapping), "-o",
            str(work / "panel"), "--chunk-rows", str(args.chunk_rows), "--partition-by", "country,survey_round",
            "--no-progress"], env)
        results["duckdb"] = run("duckdb", [sys.executable, "-c", (
            "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv('" + str(csv) + "')) TO '"
            + str(work / "duck") + "' (FORMAT parquet, PARTITION_BY (country, round), OVERWRITE_OR_IGNORE)\")")],
            env)
        results["polars"] = run("polars", [sys.executable, "-c", (
            "import polars as pl; pl.scan_csv('" + str(csv) + "').sink_parquet(pl.PartitionBy('"
            + str(work / "polars") + "', key=['country', 'round']), mkdir=True)")], env)
    print(f"rows: {args.rows:,d}; chunk rows: {args.chunk_rows:,d}")
    for name, r in results.items():
        print(f"  {name:13s} {r['seconds']:8.1f} s   peak RSS {r['peak_mib']:7.0f} MiB")
    ours = results["cluster_econ"]
    for peer in ("duckdb", "polars"):
        print(f"time ratio cluster_econ / {peer}: {ours['seconds'] / results[peer]['seconds']:.1f}")
    print(f"cluster_econ peak memory: {ours['peak_mib']:.0f} MiB (goal < 2048 MiB)")
    print("cluster_econ summary:\n" + "\n".join(ours["out"].splitlines()[-8:]))


if __name__ == "__main__":
    main()
