"""Streamed normalize (``normalize_to_folder``): the same panel as ``normalize`` (tables, rejects,
logged cells, audit counts, violations), read a few rows at a time so that duplicates, recalled
years and rejected enterprises fall in different chunks (issue 10, performance: bounded memory)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_wbes_frame, write_wbes_dta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validate import PROPERTY_MAPPING, row

import cluster_econ as ce
from cluster_econ.errors import MappingError, SchemaError
from cluster_econ.harmonize.latest import LatestPerKey
from cluster_econ.harmonize.pipeline import _latest_per_key
from cluster_econ.harmonize.stream import normalize_to_folder

TABLES = ("enterprise", "manager", "enterprise_year", "cluster_year")


def canonical(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    df = df.astype(object).where(df.notna(), None)
    return df.sort_values(key, key=lambda s: s.astype(str)).reset_index(drop=True)


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Values as text, numbers by value: a chunk of a column may be read as integers where the whole
    column is read as floats (1990 and 1990.0 are the same answer)."""

    def text(v: object) -> str | None:
        if v is None:
            return None
        try:
            return repr(float(v))
        except (TypeError, ValueError):
            return str(v)

    return df.astype(object).where(df.notna(), None).map(text)


def assert_same_panel(memory: ce.Panel, folder: Path, partition_by: list[str] | None = None) -> None:
    """The streamed folder holds what ``normalize`` gives, once both went through Parquet."""
    memory.to_parquet(folder.with_name("memory"), partition_by=partition_by)
    memory, streamed = ce.read_panel(folder.with_name("memory")), ce.read_panel(folder)
    for name in TABLES:
        assert (name in memory.tables) == (name in streamed.tables), name
        if name not in memory.tables:
            continue
        key = list(ce.schema.load(name).primary_key)
        a, b = memory[name], streamed[name]
        assert sorted(a.columns) == sorted(b.columns), name
        pd.testing.assert_frame_equal(canonical(a, key), canonical(b[a.columns], key), obj=name)
    assert sorted(memory.rejects) == sorted(streamed.rejects)
    for name, rej in memory.rejects.items():
        key = ["table", "column", "source", "row", "rule"] if name == "cells" else ["_source", "_source_row"]
        other = streamed.rejects[name]
        assert set(rej.columns) == set(other.columns), name
        a, b = canonical(as_text(rej), key), canonical(as_text(other[rej.columns]), key)
        pd.testing.assert_frame_equal(a, b, obj=f"rejects/{name}")
    pd.testing.assert_frame_equal(memory.audit_summary(), streamed.audit_summary())
    assert ce.validate(str(folder)).ok


def test_latest_per_key_in_pieces_equals_all_at_once() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        df = pd.DataFrame({
            "enterprise_id": rng.choice(["a", "b", "c", None], n), "manager_id": rng.choice(["1", "2"], n),
            "schooling_years": rng.choice([6.0, 12.0, np.nan], n), "role": rng.choice(["founder", None], n),
            "year": rng.choice([2000.0, 2001.0, np.nan], n), "_order": np.sort(rng.integers(0, 3, n)),
            "_source": "f", "_source_row": np.arange(n),
        })
        want, notes = _latest_per_key(df, ["enterprise_id", "manager_id"], "manager")
        state = LatestPerKey(["enterprise_id", "manager_id"])
        for cut in np.array_split(np.arange(n), 3):
            piece = df.iloc[cut]
            for file, part in piece.groupby("_order"):
                state.add(part.drop(columns="_order"), int(file), part.index.to_numpy())
        got, disagree = state.result()
        assert disagree == {n_["reason"].split(":")[0]: n_["rows"] for n_ in notes}
        pd.testing.assert_frame_equal(canonical(want, ["_source_row"]), canonical(got[want.columns], ["_source_row"]))


def test_two_wbes_rounds_with_recall_streamed(tmp_path: Path, wbes_mapping: Path) -> None:
    first, second = make_wbes_frame(seed=1), make_wbes_frame(seed=2)
    second["idstd"] = first["idstd"]
    for col in ("a2", "a4a", "b5"):
        second[col] = first[col]
    second.loc[5, "d2"] = -100.0  # a negative sales figure: set missing
    f1, f2 = write_wbes_dta(tmp_path / "r2009.dta", first), write_wbes_dta(tmp_path / "r2012.dta", second)
    specs = []
    for year in (2009, 2012):
        spec = tmp_path / f"wbes{year}.yaml"
        spec.write_text(wbes_mapping.read_text().replace("{from: year, param: year}", f"{{const: {year}}}"))
        specs.append(spec)
    memory = ce.normalize([f1, f2], mapping=specs, params={"country": "KEN"}, mode="quarantine")
    out = tmp_path / "panel"
    normalize_to_folder([f1, f2], specs, out, params={"country": "KEN"}, mode="quarantine", chunk_rows=25)
    assert_same_panel(memory, out, ["country", "survey_round"])
    audit = ce.read_panel(out).audit
    assert audit.loc[audit["step"] == "dropped", "rows"].sum() == 60  # recalled 2009s superseded


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=14), rows2=st.lists(row, max_size=6), chunk=st.integers(1, 5),
       strict=st.booleans())
def test_streamed_normalize_equals_normalize(rows: list, rows2: list, chunk: int, strict: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [folder / "round1.csv"]
        pd.DataFrame(rows).to_csv(files[0], index=False)
        if rows2:
            files.append(folder / "round2.csv")
            pd.DataFrame(rows2).to_csv(files[1], index=False)
        spec = folder / "generated.yaml"
        spec.write_text(PROPERTY_MAPPING, encoding="utf-8")
        mode = "strict" if strict else "quarantine"
        out = folder / "panel"
        try:
            memory = ce.normalize(files, mapping=spec, mode=mode)
        except SchemaError as err:
            with pytest.raises(SchemaError) as streamed:
                normalize_to_folder(files, spec, out, mode=mode, chunk_rows=chunk)
            assert not out.exists()  # nothing written
            want = err.violations.groupby(["table", "column", "rule"])["count"].sum().to_dict()
            got = streamed.value.violations.groupby(["table", "column", "rule"])["count"].sum().to_dict()
            assert got == want
            return
        except MappingError:
            with pytest.raises(MappingError):
                normalize_to_folder(files, spec, out, mode=mode, chunk_rows=chunk)
            return
        normalize_to_folder(files, spec, out, mode=mode, chunk_rows=chunk, partition_by=["country"])
        assert_same_panel(memory, out, ["country"])


def test_cli_chunk_rows(tmp_path: Path, cluster_csv: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    from cluster_econ.cli import main

    data, spec = cluster_csv
    data.write_text(data.read_text().replace("3,2006,boots,310,", "3,2006,boots,-310,"))
    args = ["normalize", str(data), "-m", str(spec), "--no-progress", "--quarantine", "--partition-by", "country"]
    assert main([*args, "-o", str(tmp_path / "whole")]) == 0
    whole = capsys.readouterr().out
    assert main([*args, "-o", str(tmp_path / "streamed"), "--chunk-rows", "2"]) == 0
    streamed = capsys.readouterr().out
    # the same summary (row counts, values set missing) either way
    assert streamed.split("wrote")[0] == whole.split("wrote")[0]
    assert "values set missing by quarantine: 1 (enterprise_year.sales 1)" in streamed
    assert_same_panel(ce.read_panel(tmp_path / "whole"), tmp_path / "streamed", ["country"])
    assert main([*args[:-3], "-o", str(tmp_path / "strict"), "--chunk-rows", "2"]) == 1
    assert "enterprise_year.sales: minimum: below 0" in capsys.readouterr().err
