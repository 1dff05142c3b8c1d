"""Shared fixtures: small survey files written the way fieldwork produces them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

WBES_MAPPING = Path(__file__).resolve().parents[1] / "cluster_econ" / "data_schemas" / "mappings" / "wbes.yaml"


def make_wbes_frame(n: int = 60, seed: int = 1, start_id: int = 1000) -> pd.DataFrame:
    """A WBES-style establishment file with the standardized codes (1 = yes, 2 = no; -9 don't know)."""
    rng = np.random.default_rng(seed)
    d2 = rng.lognormal(13, 1, n).round(0)
    d3c = rng.choice([0, 0, 0, 10, 40], n).astype(float)
    d3b = rng.choice([0, 0, 5], n).astype(float)
    frame = pd.DataFrame(
        {
            "idstd": np.arange(start_id, start_id + n),
            "a2": rng.choice([1, 2], n),
            "a4a": rng.choice([15, 18, 29], n),
            "b5": rng.integers(1970, 2010, n),
            "b7": rng.integers(1, 40, n).astype(float),
            "b7a": rng.choice([1, 2], n),
            "b8": rng.choice([1, 2, -9], n),
            "d2": d2,
            "d3a": 100 - d3b - d3c,
            "d3b": d3b,
            "d3c": d3c,
            "h1": rng.choice([1, 2], n),
            "h5": rng.choice([1, 2], n),
            "h8": rng.choice([1, 2], n),
            "l1": rng.integers(5, 300, n).astype(float),
            "l2": rng.integers(5, 300, n).astype(float),
            "l6": rng.integers(0, 20, n).astype(float),
            "l10": rng.choice([1, 2], n),
            "n2a": (d2 * 0.2).round(0),
            "n2b": (d2 * 0.05).round(0),
            "n2e": (d2 * 0.4).round(0),
            "n3": (d2 * 0.8).round(0),
            "n5a": (d2 * 0.1).round(0),
            "n7a": (d2 * 1.5).round(0),
            "k8": rng.choice([1, 2], n),
            "k3a": rng.integers(0, 100, n),  # a WBES item with no canonical home, kept as src_k3a
        }
    )
    frame.loc[3, "d2"] = -9  # don't know
    return frame


def write_wbes_dta(path: Path, frame: pd.DataFrame) -> Path:
    import pyreadstat

    pyreadstat.write_dta(
        frame,
        str(path),
        column_labels={"idstd": "Establishment ID", "d2": "Total annual sales", "h1": "New product"},
        variable_value_labels={"h1": {1: "Yes", 2: "No"}, "b8": {1: "Yes", 2: "No", -9: "Don't know"}},
    )
    return path


@pytest.fixture
def wbes_dta(tmp_path: Path) -> Path:
    return write_wbes_dta(tmp_path / "wbes_2013.dta", make_wbes_frame())


@pytest.fixture
def wbes_mapping() -> Path:
    return WBES_MAPPING


CLUSTER_MAPPING = """\
spec_version: 1
name: cluster-survey
recodes:
  yn12: {1: true, 2: false}
columns:
  enterprise_id: {template: "ET-{firm}"}
  cluster_id: {const: addis-footwear}
  country: {const: ETH}
  year: {from: year}
  product: {from: product}
  sales: {from: sales, scale: 1000}
  material_cost: {from: materials, scale: 1000}
  employment: {from: workers}
  new_product: {from: newprod, recode: yn12}
  schooling_years: {from: educ}
  year_established: {from: founded}
  value_added: {derive: "sales - material_cost"}  # this survey asks no energy cost
"""

CLUSTER_CSV = """\
firm,year,product,sales,materials,workers,newprod,educ,founded,notes
1,2004,leather shoes,120,60,12,1,12,1990,ok
2,2004,sandals,80,50,5,2,6,2001,
3,2004,boots,300,120,40,1,16,1985,big
1,2006,leather shoes,150,70,14,1,12,1990,
3,2006,boots,310,130,38,2,16,1985,
"""


@pytest.fixture
def cluster_csv(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "addis_footwear.csv"
    data.write_text(CLUSTER_CSV, encoding="utf-8")
    spec = tmp_path / "addis.yaml"
    spec.write_text(CLUSTER_MAPPING, encoding="utf-8")
    return data, spec


@pytest.fixture(scope="module")
def dask_cluster() -> str:
    """Address of a real Dask cluster on loopback: a scheduler and two single-threaded worker
    processes (``distributed.LocalCluster``), shared by the tests of a module; skipped when the
    optional ``distributed`` package (the ``dask`` extra) is not installed."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1", silence_logs=50) as cluster:
        yield cluster.scheduler_address
