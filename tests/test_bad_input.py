"""Each bad input gets one clear error naming the file, column, rule and rows (issue: foundation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CLUSTER_MAPPING

import cluster_econ as ce
from cluster_econ.cli import main
from cluster_econ.errors import InputError, MappingError, SchemaError
from cluster_econ.io.readers import read_source


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_missing_file(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    _, spec = cluster_csv
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        ce.normalize(tmp_path / "nope.csv", mapping=spec)


def test_corrupt_stata_file(tmp_path: Path) -> None:
    bad = tmp_path / "round1.dta"
    bad.write_bytes(b"this is not a stata file at all" * 10)
    with pytest.raises(InputError, match=r"round1\.dta: cannot read as stata: the file is corrupt"):
        read_source(bad)


def test_unknown_format(tmp_path: Path) -> None:
    f = write(tmp_path, "data.xyz", "a,b\n1,2\n")
    with pytest.raises(InputError, match=r"data\.xyz: unknown file format '\.xyz'; supported: .*\.csv"):
        read_source(f)


def test_mapping_names_absent_column_suggests_closest(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, _ = cluster_csv
    spec = write(tmp_path, "typo.yaml", CLUSTER_MAPPING.replace("{from: sales, scale: 1000}", "{from: sale}"))
    with pytest.raises(MappingError) as err:
        ce.normalize(data, mapping=spec)
    msg = str(err.value)
    assert "key 'columns.sales.from'" in msg and "(line 11)" in msg
    assert "source column 'sale' is not in addis_footwear.csv; closest: sales" in msg


def test_invalid_mapping_yaml(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, _ = cluster_csv
    broken = write(tmp_path, "broken.yaml", "spec_version: 1\ncolumns:\n  sales: {from: sales\n  year: 2\n")
    with pytest.raises(MappingError, match=r"broken\.yaml: line \d+, column \d+: invalid YAML"):
        ce.normalize(data, mapping=broken)
    unknown_key = write(
        tmp_path,
        "unknown.yaml",
        CLUSTER_MAPPING.replace("  sales: {from: sales, scale: 1000}", "  sales: {from: sales, multiply: 1000}"),
    )
    with pytest.raises(MappingError) as err:
        ce.normalize(data, mapping=unknown_key)
    assert "key 'columns.sales' (line 11)" in str(err.value)
    not_canonical = write(tmp_path, "noncanon.yaml", CLUSTER_MAPPING + "  turnover: {from: sales}\n")
    with pytest.raises(MappingError, match="'turnover' is not a canonical column"):
        ce.normalize(data, mapping=not_canonical)
    hostile = write(
        tmp_path, "hostile.yaml", CLUSTER_MAPPING + "  age: {derive: \"__import__('os').getcwd()\", extra: true}\n"
    )
    with pytest.raises(MappingError, match="is not allowed"):
        ce.normalize(data, mapping=hostile)
    python_tag = write(tmp_path, "tag.yaml", "spec_version: 1\ncolumns: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(MappingError, match="invalid YAML"):
        ce.normalize(data, mapping=python_tag)


def test_duplicate_enterprise_year_with_different_values(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(data.read_text() + "1,2004,leather shoes,999,60,12,1,12,1990,again\n")
    with pytest.raises(SchemaError) as err:
        ce.normalize(data, mapping=spec)
    assert (
        "enterprise ET-1, year 2004: sales, value_added differ (addis_footwear.csv row 1, addis_footwear.csv row 6)"
        in str(err.value)
    )
    panel = ce.normalize(data, mapping=spec, mode="quarantine")
    assert len(panel.rejects["enterprise_year"]) == 2
    # an identical repeat is kept once and counted
    data2 = write(
        tmp_path,
        "rep.csv",
        "firm,year,product,sales,materials,workers,newprod,educ,founded,notes\n"
        "1,2004,shoes,120,60,12,1,12,1990,\n1,2004,shoes,120,60,12,1,12,1990,\n",
    )
    panel = ce.normalize(data2, mapping=spec)
    assert len(panel.enterprise_year) == 1
    assert panel.audit_summary().set_index("table").loc["enterprise_year", "dropped"] == 1


def test_text_in_numeric_column(cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(data.read_text().replace("2,2004,sandals,80,", "2,2004,sandals,eighty,"))
    with pytest.raises(SchemaError) as err:
        ce.normalize(data, mapping=spec)
    assert (
        "enterprise_year.sales: type: not a valid number: 1 row(s) in addis_footwear.csv, rows 2; values 'eighty'"
        in str(err.value)
    )


def test_negative_sales(cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(data.read_text().replace("3,2006,boots,310,", "3,2006,boots,-310,"))
    with pytest.raises(
        SchemaError,
        match=r"enterprise_year\.sales: minimum: below 0: 1 row\(s\) in addis_footwear\.csv, "
        r"rows 5; values -310000",
    ):
        ce.normalize(data, mapping=spec)


def test_schooling_of_45_years(cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(data.read_text().replace("2,2004,sandals,80,50,5,2,6,", "2,2004,sandals,80,50,5,2,45,"))
    with pytest.raises(SchemaError, match=r"manager\.schooling_years: maximum: above 30: 1 row\(s\).*values 45"):
        ce.normalize(data, mapping=spec)


def test_latin1_csv_keeps_accents(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    _, spec = cluster_csv
    text = (
        "firm;year;product;sales;materials;workers;newprod;educ;founded;notes\n"
        "1;2004;Chaussures en cuir tanné, façon « Bâle »;120;60;12;1;12;1990;é\n"
        "2;2004;Sandales légères;80;50;5;2;6;2001;\n"
    )
    f = write(tmp_path, "latin1.csv", text, encoding="latin-1")
    panel = ce.normalize(f, mapping=spec)
    products = set(panel.enterprise["product"])
    assert "Chaussures en cuir tanné, façon « Bâle »" in products and "Sandales légères" in products


def test_empty_and_header_only_files(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    _, spec = cluster_csv
    empty = write(tmp_path, "empty.csv", "")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        ce.normalize(empty, mapping=spec)
    header = write(tmp_path, "header.csv", "firm,year,product,sales,materials,workers,newprod,educ,founded,notes\n")
    with pytest.raises(InputError, match=r"header\.csv: has a header \(10 columns\) but no data rows"):
        ce.normalize(header, mapping=spec)


def test_yes_no_coded_differently_across_rounds(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    round1, spec12 = cluster_csv
    # round 2 codes the innovation item 0/1 instead of 1/2
    round2 = write(
        tmp_path,
        "round2.csv",
        "firm,year,product,sales,materials,workers,newprod,educ,founded,notes\n"
        "1,2008,shoes,130,60,12,0,12,1990,\n3,2008,boots,330,140,41,1,16,1985,\n",
    )
    with pytest.raises(MappingError) as err:
        ce.normalize([round1, round2], mapping=spec12)
    msg = str(err.value)
    assert "column 'newprod' of round2.csv has values the recode does not list: 0 (1 rows)" in msg
    assert "first rows [1]" in msg and "0/1 instead of 1/2" in msg
    spec01 = write(
        tmp_path, "round2.yaml", CLUSTER_MAPPING.replace("yn12: {1: true, 2: false}", "yn12: {1: true, 0: false}")
    )
    panel = ce.normalize([round1, round2], mapping=[spec12, spec01])
    ey = panel.enterprise_year.set_index(["enterprise_id", "year"])
    assert bool(ey.loc[("ET-1", 2008), "new_product"]) is False and bool(ey.loc[("ET-3", 2008), "new_product"]) is True
    assert bool(ey.loc[("ET-2", 2004), "new_product"]) is False and bool(ey.loc[("ET-1", 2004), "new_product"]) is True


def test_cli_exit_codes(tmp_path: Path, cluster_csv: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    data, spec = cluster_csv
    assert (
        main(["normalize", str(tmp_path / "missing.csv"), "-m", str(spec), "-o", str(tmp_path / "o"), "--no-progress"])
        == 2
    )
    assert "missing.csv: file not found" in capsys.readouterr().err
    data.write_text(data.read_text().replace("3,2006,boots,310,", "3,2006,boots,-310,"))
    assert main(["normalize", str(data), "-m", str(spec), "-o", str(tmp_path / "o"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "sales: minimum: below 0" in err and "--quarantine" in err
    assert not (tmp_path / "o").exists()
    assert (
        main(["normalize", str(data), "-m", str(spec), "-o", str(tmp_path / "o"), "--no-progress", "--quarantine"]) == 0
    )
    assert "values set missing by quarantine: 1 (enterprise_year.sales 1)" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "not-a-panel")]) == 2
    # a written panel whose table no longer validates
    panel = ce.read_panel(tmp_path / "o")
    bad = panel.replace(enterprise_year=panel.enterprise_year.assign(sales=-1.0))
    bad.to_parquet(tmp_path / "bad")
    assert main(["validate", str(tmp_path / "bad")]) == 1
    assert "enterprise_year.sales: minimum: below 0: 5 row(s)" in capsys.readouterr().out
