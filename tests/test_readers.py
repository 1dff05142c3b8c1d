"""Readers: every supported format gives the same data, labels kept as metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster_econ.io.readers import read_source

FRAME = pd.DataFrame(
    {
        "firm": [1, 2, 3],
        "name": ["Atelier Zoé", "Ñandú Metal", "Kebede & Sons"],
        "sales": [10.5, np.nan, 30.0],
        "inno": [1, 2, 1],
    }
)


def check(df: pd.DataFrame) -> None:
    assert list(df["firm"]) == [1, 2, 3]
    assert list(df["name"]) == list(FRAME["name"])
    assert df["sales"].iloc[0] == 10.5 and pd.isna(df["sales"].iloc[1])


def test_excel(tmp_path: Path) -> None:
    path = tmp_path / "s.xlsx"
    FRAME.to_excel(path, index=False)
    src = read_source(path)
    assert src.format == "excel" and len(src.sha256) == 64
    check(src.data)


def test_spss_keeps_labels(tmp_path: Path) -> None:
    import pyreadstat

    path = tmp_path / "s.sav"
    pyreadstat.write_sav(
        FRAME,
        str(path),
        column_labels={"inno": "Introduced a new product"},
        variable_value_labels={"inno": {1: "Yes", 2: "No"}},
    )
    src = read_source(path)
    check(src.data)
    assert src.variable_labels["inno"] == "Introduced a new product"
    assert src.value_labels["inno"] == {1.0: "Yes", 2.0: "No"}


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    FRAME.to_parquet(path)
    check(read_source(path).data)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_delimiter_sniffing(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "s.csv"
    FRAME.to_csv(path, sep=sep, index=False)
    src = read_source(path)
    assert src.delimiter == sep
    check(src.data)


def test_csv_encodings(tmp_path: Path) -> None:
    for enc in ("utf-8", "utf-8-sig", "cp1252"):
        path = tmp_path / f"s_{enc}.csv"
        FRAME.to_csv(path, index=False, encoding=enc)
        check(read_source(path).data)


def test_stata_value_labels(tmp_path: Path) -> None:
    import pyreadstat

    path = tmp_path / "s.dta"
    pyreadstat.write_dta(FRAME, str(path), variable_value_labels={"inno": {1: "Yes", 2: "No"}})
    src = read_source(path)
    check(src.data)
    # codes, not labels, in the data; the labels in metadata
    assert list(src.data["inno"]) == [1, 2, 1]
    assert src.value_labels["inno"] == {1: "Yes", 2: "No"}
