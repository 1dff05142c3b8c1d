"""Benchmark: generate about one million firm-years (preset ``large``) and write them.

No other package simulates this model, so generation is measured against the budget of the
brief (1M firm-years in under 60 s) and against a floor that any simulator of the same tables
pays: building the same enterprise_year columns from already-drawn numpy arrays with pandas.
Writing is compared with the peer ``pyarrow.parquet.write_table`` on the same tables in the same
process (``Panel.to_parquet`` adds type handling, hashing and the manifest).

Usage: python benchmarks/bench_simulate.py [--firms N] [--seed S]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firms", type=int, default=None, help="scale the large preset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from cluster_econ.simulate import simulate

    t0 = time.perf_counter()
    sim = simulate(preset="large", seed=args.seed, n_firms=args.firms)
    t_gen = time.perf_counter() - t0
    ey = sim.panel.enterprise_year
    n_true = len(sim.truth.firm_year)
    print(f"generated {len(sim.panel.enterprise):,d} firms, {n_true:,d} true firm-years, "
          f"{len(ey):,d} surveyed firm-years in {t_gen:.2f} s "
          f"({n_true / t_gen / 1e6:.2f} M firm-years/s; budget 60 s per 1M: "
          f"ratio budget/ours = {60 * n_true / 1e6 / t_gen:.1f})")

    # floor: a pandas frame of the same shape built from ready arrays
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    cols = {c: rng.random(len(ey)) for c in ey.columns}
    pd.DataFrame(cols)
    t_floor = time.perf_counter() - t0
    print(f"floor (draw {ey.shape[1]} uniform columns and build a DataFrame): {t_floor:.2f} s; "
          f"ours / floor = {t_gen / t_floor:.1f}")

    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sim.panel.to_parquet(str(Path(tmp) / "panel"))
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        for name, df in sim.panel.tables.items():
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                           str(Path(tmp) / f"peer_{name}.parquet"), compression="zstd")
        t_peer = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (Path(tmp) / "panel").rglob("*") if f.is_file())
    print(f"write Panel.to_parquet: {t_write:.2f} s ({size / 1e6:.1f} MB); pyarrow write_table "
          f"peer: {t_peer:.2f} s; ratio peer/ours = {t_peer / t_write:.2f}")


if __name__ == "__main__":
    main()
