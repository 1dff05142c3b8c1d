"""Readers: every supported format gives the same data, labels kept as metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import InputError
from cluster_econ.io.readers import ReadOptions, read_source

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


# -- identifiers are text as written ---------------------------------------------------------------
def test_csv_id_columns_keep_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("firm,sales\n007,10\n012,20\n")
    src = read_source(path, text_columns={"firm"})
    assert list(src.data["firm"]) == ["007", "012"]
    assert list(src.data["sales"]) == [10, 20]


def test_excel_text_cells_and_zero_padded_formats(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["firm", "code", "sales"])
    ws.append(["007", 7, 1.5])
    ws.append(["012", 12, 2.5])
    for row in (2, 3):
        ws.cell(row, 2).number_format = "000"  # shows 007 and 012
    path = tmp_path / "ids.xlsx"
    wb.save(path)
    src = read_source(path, text_columns={"firm", "code"})
    assert list(src.data["firm"]) == ["007", "012"]
    assert src.id_widths == {"code": 3}
    assert list(src.data["sales"]) == [1.5, 2.5]


def test_spss_and_stata_zero_padded_display_formats(tmp_path: Path) -> None:
    import pyreadstat

    frame = pd.DataFrame({"firm": [7.0, 12.0], "sales": [1.0, 2.0]})
    pyreadstat.write_sav(frame, str(tmp_path / "s.sav"), variable_format={"firm": "N8"})
    assert read_source(tmp_path / "s.sav", text_columns={"firm"}).id_widths == {"firm": 8}
    pyreadstat.write_dta(frame, str(tmp_path / "s.dta"), variable_format={"firm": "%05.0f"})
    assert read_source(tmp_path / "s.dta", text_columns={"firm"}).id_widths == {"firm": 5}
    assert read_source(tmp_path / "s.dta").id_widths == {}  # only for identifier columns


def test_parquet_text_ids(tmp_path: Path) -> None:
    pd.DataFrame({"firm": ["007", "012"], "x": [1, 2]}).to_parquet(tmp_path / "s.parquet")
    assert list(read_source(tmp_path / "s.parquet", text_columns={"firm"}).data["firm"]) == ["007", "012"]


# -- numbers written as text ----------------------------------------------------------------------
def notes(src) -> str:
    return "\n".join(n["reason"] for n in src.notes)


def test_decimal_comma_and_thousands_dots_detected(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("firm;sales;share\n1;25.000;3,5\n2;1.250.000;0,125\n3;800;12\n")
    src = read_source(path)
    assert list(src.data["sales"]) == [25_000, 1_250_000, 800]
    assert list(src.data["share"]) == [3.5, 0.125, 12.0]
    assert "numbers read with a decimal comma, as columns sales ('1.250.000'), share ('3,5') show" in notes(src)


def test_an_ambiguous_file_says_what_was_assumed(tmp_path: Path) -> None:
    path = tmp_path / "amb.csv"
    path.write_text("firm;sales\n1;25.000\n2;800\n")
    src = read_source(path)
    assert list(src.data["sales"]) == [25_000, 800]
    assert "ASSUMED a decimal comma and '.' between thousands (the file is separated by ';')" in notes(src)
    path.write_text("firm,sales\n1,25.000\n2,800\n")
    src = read_source(path)
    assert list(src.data["sales"]) == [25.0, 800.0]
    assert "ASSUMED a decimal point (the usual convention): columns sales ('25.000')" in notes(src)


def test_declared_decimal_mark(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("firm;sales\n1;25.000\n2;800\n")
    src = read_source(path, options=ReadOptions(decimal=".", text_columns=frozenset({"firm"})))
    assert list(src.data["sales"]) == [25.0, 800.0] and not src.notes


def test_a_misplaced_thousands_mark_is_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("firm;sales\n1;3,5\n2;2.5\n")  # 2.5 in a decimal-comma file: not 25
    src = read_source(path)
    assert list(src.data["sales"]) == ["3,5", "2.5"]


def test_conflicting_decimal_marks_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("firm;a;b\n1;3,5;2.75\n2;1,25;0.5\n")
    with pytest.raises(
        InputError,
        match=r"cannot tell the decimal mark: columns a \('3,5'\) read as decimal "
        r"commas; columns b \('2.75'\) as decimal points",
    ):
        read_source(path)


def test_na_cells_are_missing_by_default_and_say_so(tmp_path: Path) -> None:
    path = tmp_path / "na.csv"
    path.write_text("firm,sales,workers\n1,NA,3\n2,5,.\n")
    src = read_source(path)
    assert pd.isna(src.data["sales"].iloc[0]) and src.data["sales"].iloc[1] == 5
    text = notes(src)
    assert "cells written 'NA' read as missing: sales (1)" in text
    assert "workers: 1 cell(s) written '.' keep the column from being numeric; if they mean missing, add them" in text
    src = read_source(path, options=ReadOptions(na_values=("", "NA", ".")))
    assert list(src.data["workers"].fillna(-1)) == [3, -1]
    src = read_source(path, options=ReadOptions(na_values=("",)))
    assert list(src.data["sales"]) == ["NA", "5"]


def test_excel_text_cells_with_decimal_commas(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["firm", "sales", "share"])
    ws.append([1, "1.250.000", "3,5"])
    ws.append([2, 800, 0.25])
    wb.save(tmp_path / "t.xlsx")
    src = read_source(tmp_path / "t.xlsx")
    assert list(src.data["sales"]) == [1_250_000, 800] and list(src.data["share"]) == [3.5, 0.25]


# -- layout: title rows, sheets, repeated names, encodings ------------------------------------------
def test_csv_title_row_detected_or_declared(tmp_path: Path) -> None:
    path = tmp_path / "title.csv"
    path.write_text("Survey of footwear firms, Addis Ababa 2004\n\nfirm,year,sales\n1,2004,10\n2,2004,20\n")
    src = read_source(path)
    assert list(src.data.columns) == ["firm", "year", "sales"] and len(src.data) == 2
    assert "header found on row 3; 2 row(s) above it skipped as a title" in notes(src)
    declared = read_source(path, options=ReadOptions(header_row=3))
    assert list(declared.data.columns) == ["firm", "year", "sales"] and not declared.notes
    assert list(read_source(path, options=ReadOptions(skip_rows=2)).data.columns) == ["firm", "year", "sales"]
    with pytest.raises(InputError, match="header_row 2 and skip_rows 2 disagree"):
        read_source(path, options=ReadOptions(header_row=2, skip_rows=2))


def test_excel_title_row_and_sheets(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "cover"
    ws.append(["nothing here"])
    data = wb.create_sheet("round2")
    data.append(["Round 2: firms surveyed in 2006"])
    data.append(["firm", "year", "sales"])
    data.append(["007", 2006, 12.5])
    wb.save(tmp_path / "t.xlsx")
    src = read_source(tmp_path / "t.xlsx", sheet="round2", text_columns={"firm"})
    assert list(src.data.columns) == ["firm", "year", "sales"] and src.data["firm"].tolist() == ["007"]
    assert "header found on row 2" in notes(src)
    assert read_source(tmp_path / "t.xlsx", sheet=1).data.shape == (1, 3)
    with pytest.raises(InputError, match=r"no sheet named 'round3'; sheets: 'cover', 'round2'"):
        read_source(tmp_path / "t.xlsx", sheet="round3")
    with pytest.raises(InputError, match=r"no sheet at position 5 \(0 is the first\); sheets: 0: 'cover'"):
        read_source(tmp_path / "t.xlsx", sheet=5)


def test_repeated_column_names_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("firm,sales,sales\n1,10,11\n")
    src = read_source(path)
    assert list(src.data.columns) == ["firm", "sales", "sales.1"]
    assert src.duplicate_columns == {"sales": ["sales", "sales.1"]}
    assert "repeated column names: 'sales' 2 times (read as sales, sales.1)" in notes(src)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "u.csv"
    FRAME.to_csv(path, index=False, encoding=encoding)
    if encoding == "utf-32":
        check(read_source(path).data)  # a byte-order mark says it
    check(read_source(path, encoding=encoding).data)
    if encoding in ("utf-16", "utf-16-le"):
        check(read_source(path).data)  # detected, with or without a byte-order mark


def test_empty_rows_and_trailing_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("firm;sales;;\n1;10;;\n;;;\n2;20;;\n")
    src = read_source(path)
    assert list(src.data.columns) == ["firm", "sales"] and list(src.data["firm"]) == [1, 2]
    assert "empty rows skipped" in notes(src)


@pytest.mark.parametrize("version", [114, 117, 118, 119])
def test_truncated_stata_file(tmp_path: Path, version: int) -> None:
    """Cut in its value labels (the last section), a .dta reads silently without them in pandas and
    pyreadstat: refused here, in the old formats (113-115) and the tagged ones (117-119); so is a
    file cut anywhere else."""
    path = tmp_path / "t.dta"
    frame = FRAME.assign(name=FRAME["name"].str.encode("ascii", "ignore").str.decode("ascii"))
    frame.to_stata(path, write_index=False, version=version, value_labels={"inno": {1: "Yes", 2: "No"}})
    assert read_source(path).value_labels["inno"] == {1: "Yes", 2: "No"}
    raw = path.read_bytes()
    cut = tmp_path / "cut.dta"
    for end, where in ((len(raw) - 5, "value labels"), (len(raw) // 3, "")):
        cut.write_bytes(raw[:end])
        with pytest.raises(InputError, match=rf"cut\.dta: the Stata file is truncated .*{where}"):
            read_source(cut)


def test_a_csv_read_by_chunks_equals_one_read(tmp_path: Path) -> None:
    """The chunk-by-chunk route the module docstring of cluster_econ.io.sheets describes."""
    from cluster_econ.io import numbers, sheets

    path = tmp_path / "big.csv"
    rows = [
        f"{i:05d};{i * 1000:,};{i / 8:.3f}".replace(",", "X").replace(".", ",").replace("X", ".") for i in range(50)
    ]
    path.write_text("Title of the file\nfirm;sales;share\n" + "\n".join(rows) + "\n", encoding="utf-8")
    options = ReadOptions(text_columns=frozenset({"firm"}))
    whole = read_source(path, options=options).data
    layout = sheets.sniff_csv(path, options)
    chunks = sheets.read_csv_text(path, layout, chunksize=7)
    first = sheets.name_columns(next(chunks), layout)
    fmt, _ = numbers.detect_number_format(first, {"firm"}, numbers.DEFAULT_NA_VALUES, layout.delimiter)
    parts = [first] + [sheets.name_columns(c, layout) for c in chunks]
    converted = [numbers.convert_text_cells(p, {"firm"}, fmt, numbers.DEFAULT_NA_VALUES)[0] for p in parts]
    joined = pd.concat(converted, ignore_index=True)
    assert joined["firm"].tolist() == whole["firm"].tolist() == [f"{i:05d}" for i in range(50)]
    np.testing.assert_array_equal(joined["sales"].astype(float), whole["sales"].astype(float))
    np.testing.assert_array_equal(joined["share"].astype(float), [i / 8 for i in range(50)])


def test_a_header_with_unnamed_columns_is_not_a_title(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("firm,sales,,,year,workers,,,,\n" + "1,2,3,4,2004,5,6,7,8,9\n" * 3)
    src = read_source(path)
    assert src.header_row == 1 and list(src.data.columns[:2]) == ["firm", "sales"]
    assert "header found" not in notes(src)
