"""Each bad input gets one clear error naming the file, column, rule and rows (issue: foundation)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
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


# -- issue 10: the smaller items ---------------------------------------------------------------------
def test_unquoted_yes_no_recode_keys_stay_text(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(
        data.read_text()
        .replace(",1,12,1990,", ",Yes,12,1990,")
        .replace(",2,6,", ",No,6,")
        .replace(",1,16,1985,", ",yes,16,1985,")
        .replace(",2,16,1985,", ",no,16,1985,")
    )
    spec.write_text(spec.read_text().replace("yn12: {1: true, 2: false}", "yn12: {Yes: true, No: false}"))
    loaded = ce.harmonize.load_mapping(spec)
    assert loaded.data["recodes"]["yn12"] == {"Yes": True, "No": False}
    panel = ce.normalize(data, mapping=spec)
    ey = panel.enterprise_year.set_index(["enterprise_id", "year"])
    assert bool(ey.loc[("ET-1", 2004), "new_product"]) is True and bool(ey.loc[("ET-2", 2004), "new_product"]) is False
    assert bool(ey.loc[("ET-3", 2006), "new_product"]) is False
    # the same inside a column's own recode, and a key given twice in two spellings is an error
    spec.write_text(
        CLUSTER_MAPPING.replace("{from: newprod, recode: yn12}", "{from: newprod, recode: {On: true, on: false}}")
    )
    with pytest.raises(MappingError, match=r"recode keys 'On' and 'on' match the same source values"):
        ce.harmonize.load_mapping(spec)


def test_a_repeated_column_name_used_by_the_mapping_is_an_error(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    lines = data.read_text().splitlines()
    lines[0] += ",sales"
    data.write_text("\n".join(line + (",1" if i else "") for i, line in enumerate(lines)) + "\n")
    with pytest.raises(
        MappingError,
        match=r"source column 'sales' appears 2 times in addis_footwear.csv \(read as "
        r"sales, sales.1\): name the one you mean",
    ):
        ce.normalize(data, mapping=spec)


def test_utf16_declared_in_the_mapping(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    utf16 = write(tmp_path, "round_utf16.csv", data.read_text().replace("boots", "bottes à lacets"), "utf-16")
    spec.write_text(
        spec.read_text().replace("name: cluster-survey\n", "name: cluster-survey\nsource: {encoding: utf-16}\n")
    )
    panel = ce.normalize(utf16, mapping=spec)
    assert "bottes à lacets" in set(panel.enterprise["product"])


def test_excel_title_row_and_missing_columns_list_the_columns_found(
    tmp_path: Path, cluster_csv: tuple[Path, Path]
) -> None:
    import openpyxl

    data, spec = cluster_csv
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Addis footwear survey, round 1"])
    for line in data.read_text().splitlines():
        ws.append([int(v) if v.isdigit() else (v or None) for v in line.split(",")])
    wb.save(tmp_path / "round1.xlsx")
    panel = ce.normalize(tmp_path / "round1.xlsx", mapping=spec)
    assert len(panel.enterprise_year) == 5
    assert panel.audit["reason"].str.contains("header found on row 2").any()
    # declared wrongly, the error lists what the file has
    spec.write_text(
        spec.read_text().replace("name: cluster-survey\n", "name: cluster-survey\nsource: {header_row: 1}\n")
    )
    with pytest.raises(MappingError) as err:
        ce.normalize(tmp_path / "round1.xlsx", mapping=spec)
    message = str(err.value)
    assert "source column 'firm' is not in round1.xlsx" in message
    assert "columns found in round1.xlsx: Addis footwear survey, round 1" in message


def test_r_style_na_cells(cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(data.read_text().replace("2,2004,sandals,80,", "2,2004,sandals,NA,"))
    panel = ce.normalize(data, mapping=spec)
    ey = panel.enterprise_year.set_index(["enterprise_id", "year"])
    assert pd.isna(ey.loc[("ET-2", 2004), "sales"]) and pd.isna(ey.loc[("ET-2", 2004), "value_added"])
    assert panel.audit["reason"].str.contains("cells written 'NA' read as missing: sales").any()


def test_value_added_needs_its_inputs(cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    spec.write_text(
        CLUSTER_MAPPING.replace(
            '  value_added: {derive: "sales - material_cost"}  # this survey asks no energy cost\n', ""
        )
    )
    panel = ce.normalize(data, mapping=spec)
    assert "value_added" not in panel.enterprise_year.columns or panel.enterprise_year["value_added"].isna().all()
    notes = "\n".join(panel.audit["reason"])
    assert "value_added: not derived: it is sales - material_cost - energy_cost, and energy_cost is not mapped" in notes
    # mapped inputs: derived, missing where one input is missing
    data.write_text(data.read_text().replace("2,2004,sandals,80,50,", "2,2004,sandals,80,,"))
    spec.write_text(
        CLUSTER_MAPPING.replace('  value_added: {derive: "sales - material_cost"}', "  energy_cost: {from: workers}")
    )
    ey = ce.normalize(data, mapping=spec).enterprise_year.set_index(["enterprise_id", "year"])
    assert ey.loc[("ET-1", 2004), "value_added"] == 120_000 - 60_000 - 12
    assert pd.isna(ey.loc[("ET-2", 2004), "value_added"])


def test_division_by_zero_in_derive_is_missing_with_a_note(cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    data.write_text(data.read_text().replace("2,2004,sandals,80,50,5,", "2,2004,sandals,80,50,0,"))
    spec.write_text(spec.read_text() + '  sales_per_worker: {derive: "sales / employment", extra: true}\n')
    panel = ce.normalize(data, mapping=spec)
    ey = panel.enterprise_year.set_index(["enterprise_id", "year"])
    assert pd.isna(ey.loc[("ET-2", 2004), "sales_per_worker"])
    assert ey.loc[("ET-1", 2004), "sales_per_worker"] == 120_000 / 12
    assert (
        panel.audit["reason"].str.contains(r"sales_per_worker: 1 row\(s\) divide by zero in sales / employment").any()
    )


def test_cli_out_is_a_file_and_unused_set(tmp_path: Path, cluster_csv: tuple[Path, Path], capsys) -> None:
    data, spec = cluster_csv
    target = tmp_path / "panel.parquet"
    target.write_text("not a folder")
    assert main(["normalize", str(data), "-m", str(spec), "--out", str(target), "--no-progress"]) == 2
    assert "--out " + str(target) + ": is a file; give the folder the panel is written to" in capsys.readouterr().err
    assert main(["normalize", str(data), "-m", str(spec), "--out", str(target / "sub"), "--no-progress"]) == 2
    assert "which is a file" in capsys.readouterr().err
    assert main(["normalize", str(data), "-m", str(spec), "--set", "year=2004", "--out", str(tmp_path / "o")]) == 2
    assert "parameter(s) year given (--set) but not used by the mapping(s) cluster-survey" in capsys.readouterr().err


def test_cli_test_by_an_unknown_column(tmp_path: Path, cluster_csv: tuple[Path, Path], capsys) -> None:
    data, spec = cluster_csv
    ce.normalize(data, mapping=spec).to_parquet(tmp_path / "panel")
    code = main(["test", str(tmp_path / "panel"), "--by", "stage", "--hypotheses", "P8", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--by stage: the panel's cluster_year has no such column (its columns: cluster_id, year" in err
    assert not (tmp_path / "r").exists()


def test_readme_links_only_files_in_the_repository() -> None:
    """Markdown links and paths into the repository's folders (or out of it, ../) must exist."""
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    links = [t for t in re.findall(r"\]\(([^)#\s]+)", readme) if not t.startswith(("http://", "https://"))]
    folders = "|".join(("data_schemas", "benchmarks", "replication", "tests", "cluster_econ"))
    paths = re.findall(rf"`((?:\.\./|(?:{folders})/)[^`\s]*)`", readme)
    assert paths, "the README names no repository paths: the pattern is wrong"
    for target in links + paths:
        assert not target.startswith("../"), f"README points outside the repository: {target}"
        found = list(root.glob(target)) if "*" in target else [root / target]
        assert found and all(p.exists() for p in found), f"README points at {target}, which is not in the repository"


def test_source_options_are_checked_by_the_mapping_schema(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    spec.write_text(
        spec.read_text().replace(
            "name: cluster-survey\n", "name: cluster-survey\nsource: {decimal: ';', header_row: 0, sep: ','}\n"
        )
    )
    with pytest.raises(MappingError) as err:
        ce.normalize(data, mapping=spec)
    message = str(err.value)
    assert "key 'source' (line 3): Additional properties are not allowed ('sep' was unexpected)" in message
    assert "key 'source.decimal' (line 3): ';' is not one of ['.', ',']" in message
    assert "key 'source.header_row' (line 3): 0 is less than the minimum of 1" in message
