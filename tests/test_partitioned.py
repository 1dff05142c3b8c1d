"""Panels partitioned by country and survey round (issue 12, item 5): written as hive-style datasets,
read back by ``ce.read_panel``, and read as they are by DuckDB, polars and Dask; the manifest covers
every partition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.cli import main

PARTS = ["country", "survey_round"]


def survey_panel(missing_round: bool = False) -> ce.Panel:
    """Two countries, three rounds (one label with a space and a slash), 60 enterprises."""
    rng = np.random.default_rng(3)
    ids = [f"{c}-{i:03d}" for c in ("KEN", "ETH") for i in range(30)]
    ent = pd.DataFrame({"enterprise_id": ids, "cluster_id": [i[:3].lower() for i in ids],
                        "country": [i[:3] for i in ids]})
    rounds = {2004: "2004", 2006: "2006 wave/2", 2008: "2008"}
    ey = pd.DataFrame({"enterprise_id": np.repeat(ids, 3), "year": np.tile(list(rounds), len(ids))})
    ey["survey_round"] = ey["year"].map(rounds)
    ey["sales"] = rng.lognormal(10, 1, len(ey)).round(2)
    ey["employment"] = rng.integers(1, 50, len(ey)).astype(float)
    if missing_round:
        ey.loc[5, "survey_round"] = None
    return ce.validate(ce.Panel({"enterprise": ent, "enterprise_year": ey})).panel.with_cluster_year()


def by_key(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(key).reset_index(drop=True)


def test_partitioned_round_trip_and_manifest(tmp_path: Path) -> None:
    panel = survey_panel()
    out = tmp_path / "panel"
    panel.to_parquet(out, partition_by=PARTS)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert "enterprise_year/country=ETH/survey_round=2006%20wave%2F2/part-0.parquet" in files
    assert "enterprise/country=KEN/part-0.parquet" in files  # the enterprise table has no round
    assert "cluster_year.parquet" in files  # no country column, no enterprise: one file
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(files) == set(manifest["files"])  # every partition is in the manifest
    ey_meta = manifest["tables"]["enterprise_year"]
    assert ey_meta["partition_by"] == PARTS and ey_meta["added_columns"] == ["country"]
    assert ey_meta["rows"] == sum(i["rows"] for i in manifest["files"].values() if i["table"] == "enterprise_year")
    back = ce.read_panel(out)
    for name, key in (("enterprise", ["enterprise_id"]), ("enterprise_year", ["enterprise_id", "year"]),
                      ("cluster_year", ["cluster_id", "year"])):
        pd.testing.assert_frame_equal(by_key(back[name], key), by_key(panel[name], key))
    assert "country" not in back.enterprise_year.columns  # put in the path only, dropped again
    assert ce.validate(str(out)).ok
    # byte-identical when written again
    panel.to_parquet(tmp_path / "again", partition_by=PARTS)
    for f in files:
        assert (out / f).read_bytes() == (tmp_path / "again" / f).read_bytes()


def test_other_engines_read_the_dataset_as_it_is(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    dd = pytest.importorskip("dask.dataframe")
    panel = survey_panel()
    out = tmp_path / "panel"
    panel.to_parquet(out, partition_by=PARTS)
    ey = panel.enterprise_year.assign(country=panel.enterprise_year["enterprise_id"].str[:3])
    expected = ey.groupby(PARTS)["sales"].agg(["size", "sum"]).sort_index()

    def check(frame: pd.DataFrame) -> None:
        frame = frame.assign(survey_round=frame["survey_round"].astype(str), country=frame["country"].astype(str))
        got = frame.groupby(PARTS)["sales"].agg(["size", "sum"]).sort_index()
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)
        assert set(frame.columns) >= {"enterprise_id", "year", "sales", "country", "survey_round"}

    pattern = str(out / "enterprise_year" / "**" / "*.parquet")
    check(duckdb.sql(f"select * from read_parquet('{pattern}', hive_partitioning = true)").df())
    check(pl.scan_parquet(pattern, hive_partitioning=True).collect().to_pandas())
    check(dd.read_parquet(str(out / "enterprise_year")).compute())
    # a query that uses the partitions
    n = duckdb.sql(f"select count(*) from read_parquet('{pattern}', hive_partitioning = true) "
                   "where country = 'KEN' and survey_round = '2006 wave/2'").fetchall()[0][0]
    assert n == 30


def test_a_column_with_missing_values_does_not_partition(tmp_path: Path) -> None:
    pl = pytest.importorskip("polars")
    dd = pytest.importorskip("dask.dataframe")
    panel = survey_panel(missing_round=True)
    out = tmp_path / "panel"
    panel.to_parquet(out, partition_by=PARTS)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"]["enterprise_year"]["partition_by"] == ["country"]
    back = ce.read_panel(out).enterprise_year
    assert back["survey_round"].isna().sum() == 1 and len(back) == 180
    assert len(dd.read_parquet(str(out / "enterprise_year")).compute()) == 180
    assert pl.scan_parquet(str(out / "enterprise_year" / "**" / "*.parquet"), hive_partitioning=True).collect()[
        "survey_round"].null_count() == 1


def test_validate_checks_every_partition(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "panel"
    survey_panel().to_parquet(out, partition_by=PARTS)
    part = out / "enterprise_year" / "country=KEN" / "survey_round=2008" / "part-0.parquet"
    part.write_bytes(part.read_bytes()[:-20] + b"x" * 20)
    stray = out / "enterprise_year" / "country=TZA" / "survey_round=2008"
    stray.mkdir(parents=True)
    (stray / "part-0.parquet").write_bytes((out / "enterprise" / "country=KEN" / "part-0.parquet").read_bytes())
    assert main(["validate", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "enterprise_year/country=KEN/survey_round=2008/part-0.parquet: sha256: contents changed" in printed
    stray_rel = "enterprise_year/country=TZA/survey_round=2008/part-0.parquet"
    assert f"{stray_rel}: data file not listed in the manifest" in printed
    with pytest.raises(ce.errors.InputError, match="does not match its manifest"):
        ce.read_panel(out)
