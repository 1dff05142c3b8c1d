"""Harmonization end to end: WBES .dta and a cluster-survey CSV into a validated Panel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_wbes_frame, write_wbes_dta

import cluster_econ as ce
from cluster_econ.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_wbes_dta_to_panel(wbes_dta: Path, wbes_mapping: Path) -> None:
    panel = ce.normalize(wbes_dta, mapping=wbes_mapping, params={"country": "KEN", "year": 2012})
    ey, ent = panel.enterprise_year, panel.enterprise
    source = make_wbes_frame()
    assert len(ent) == len(source)
    # one reported row and one recalled row (year - 3) per establishment
    assert len(ey) == 2 * len(source)
    assert set(ey["year"]) == {2012, 2009}
    assert ey.loc[ey["year"] == 2009, "recall"].all()
    reported = ey[ey["year"] == 2012].set_index("enterprise_id")
    # the -9 "don't know" in d2 is missing, never 0
    assert pd.isna(reported.loc["1003", "sales"])
    assert (reported["sales"].dropna() > 0).all()
    # 1/2 codes became booleans; value added derived from the schema's own definition
    assert reported["new_product"].dtype == "boolean"
    row = source.iloc[0]
    got = reported.loc[str(int(row["idstd"]))]
    assert got["value_added"] == pytest.approx(row["d2"] - row["n2e"] - row["n2b"])
    assert got["export_share"] == row["d3c"]
    # unmapped source columns are kept beside the canonical ones
    assert "src_k3a" in ey.columns and reported["src_k3a"].notna().all()
    # Stata labels are kept as metadata
    assert panel.metadata["variable_labels"]["wbes_2013.dta"]["d2"] == "Total annual sales"
    assert panel.metadata["value_labels"]["wbes_2013.dta"]["h1"] == {"1": "Yes", "2": "No"}
    assert ent["country"].eq("KEN").all()
    assert panel.cluster_year is not None and panel.cluster_year["n_firms"].sum() > 0


def test_audit_accounts_for_every_row(wbes_dta: Path, wbes_mapping: Path) -> None:
    panel = ce.normalize(wbes_dta, mapping=wbes_mapping, params={"country": "KEN", "year": 2012})
    s = panel.audit_summary().set_index(["source", "table"]).loc[("wbes_2013.dta", "enterprise_year")]
    assert s["read"] == 60 and s["added"] == 60
    assert s["read"] + s["added"] == s["kept"] + s["dropped"] + s["rejected"]
    assert s["kept"] == len(panel.enterprise_year)


def test_two_rounds_link_ids_and_recall_is_superseded(tmp_path: Path, wbes_mapping: Path) -> None:
    first = make_wbes_frame(seed=1)
    second = make_wbes_frame(seed=2)
    second["idstd"] = first["idstd"]  # the same establishments re-interviewed
    for col in ("a2", "a4a", "b5"):
        second[col] = first[col]
    # round 2's recall year (2009) is round 1's reported year: the reported value wins
    f1 = write_wbes_dta(tmp_path / "r2009.dta", first)
    f2 = write_wbes_dta(tmp_path / "r2012.dta", second)
    r1 = ce.normalize(f1, mapping=wbes_mapping, params={"country": "KEN", "year": 2009})
    assert len(r1.enterprise_year) == 120
    # the same year given to both files: every enterprise-year is reported twice with different values
    with pytest.raises(ce.SchemaError, match="duplicate enterprise-year with different values: 120") as err:
        ce.normalize([f1, f2], mapping=wbes_mapping, params={"country": "KEN", "year": 2009})
    assert "r2009.dta row 1, r2012.dta row 1" in str(err.value)
    # proper run: one year per file through two specs
    spec2 = tmp_path / "wbes2012.yaml"
    spec2.write_text(wbes_mapping.read_text().replace("{from: year, param: year}", "{const: 2012}"))
    spec1 = tmp_path / "wbes2009.yaml"
    spec1.write_text(wbes_mapping.read_text().replace("{from: year, param: year}", "{const: 2009}"))
    panel = ce.normalize([f1, f2], mapping=[spec1, spec2], params={"country": "KEN"})
    ey = panel.enterprise_year
    assert ey["enterprise_id"].nunique() == 60
    assert sorted(ey["year"].unique()) == [2006, 2009, 2012]
    reported_2009 = ey[(ey["year"] == 2009)]
    assert not reported_2009["recall"].fillna(False).any()
    dropped = panel.audit[(panel.audit["step"] == "dropped")]
    assert dropped["rows"].sum() == 60 and dropped["reason"].str.contains("superseded").all()
    # lags respect the calendar: 2012's lag is 2011, which is not observed
    lag = panel.lag("sales")
    assert lag[ey["year"] == 2012].isna().all()


def test_cluster_csv_cli(cluster_csv: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, spec = cluster_csv
    out = tmp_path / "panel"
    assert run_cli("normalize", str(data), "--mapping", str(spec), "--out", str(out), "--no-progress") == 0
    printed = capsys.readouterr().out
    assert "5 read" in printed and "5 kept" in printed
    assert run_cli("validate", str(out)) == 0
    panel = ce.read_panel(out)
    ey = panel.enterprise_year.set_index(["enterprise_id", "year"])
    assert ey.loc[("ET-3", 2004), "sales"] == 300_000
    assert ey.loc[("ET-1", 2006), "src_notes"] is None or pd.isna(ey.loc[("ET-1", 2006), "src_notes"])
    assert ey.loc[("ET-3", 2004), "src_notes"] == "big"
    assert panel.manager.set_index("enterprise_id").loc["ET-3", "schooling_years"] == 16


def test_parquet_is_byte_identical_and_checked(cluster_csv: tuple[Path, Path], tmp_path: Path) -> None:
    data, spec = cluster_csv
    panel = ce.normalize(data, mapping=spec)
    a, b = tmp_path / "a", tmp_path / "b"
    panel.to_parquet(a)
    ce.normalize(data, mapping=spec).to_parquet(b)
    for f in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    back = ce.read_panel(a)
    pd.testing.assert_frame_equal(back.enterprise_year, panel.enterprise_year)
    # tampering is detected through the manifest's hashes
    target = a / "enterprise_year.parquet"
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ce.errors.InputError, match="hash mismatch"):
        ce.read_panel(a)


def test_quarantine_keeps_valid_rows(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    text = data.read_text().replace("2,2004,sandals,80,50,5,2,6,2001,", "2,2004,sandals,-80,50,5,2,45,2001,")
    data.write_text(text)
    with pytest.raises(ce.SchemaError) as err:
        ce.normalize(data, mapping=spec)
    message = str(err.value)
    assert "enterprise_year.sales: minimum: below 0" in message
    assert "manager.schooling_years: maximum: above 30" in message
    panel = ce.normalize(data, mapping=spec, mode="quarantine")
    # neither value is a key or required: both are set missing and logged cell by cell, every row stays
    assert len(panel.enterprise_year) == 5
    cells = panel.rejects["cells"].set_index("column")
    assert cells.loc["sales", "row"] == 2 and cells.loc["sales", "value"] == "-80000.0"
    assert cells.loc["schooling_years", "value"] == "45" and "maximum" in cells.loc["schooling_years", "rule"]
    s = panel.audit_summary().set_index("table").loc["enterprise_year"]
    assert s["read"] == s["kept"] + s["rejected"] + s["dropped"]


def test_derived_panel_variables() -> None:
    ent = pd.DataFrame(
        {
            "enterprise_id": ["a", "b", "c", "d"],
            "cluster_id": "k",
            "country": "KEN",
            "year_established": [1990, 2001, 2002, 1999],
            "spinoff_parent_id": [None, "a", "b", None],
        }
    )
    ey = pd.DataFrame(
        {
            "enterprise_id": ["a", "a", "a", "b", "b", "c", "d", "d"],
            "year": [2000, 2001, 2003, 2001, 2002, 2002, 2000, 2003],
            "sales": [10.0, 11, 13, 5, 6, 7, 40, 50],
            "exit": [False, False, False, False, True, False, False, False],
        }
    )
    panel = ce.Panel({"enterprise": ent, "enterprise_year": ey})
    lag = panel.lag("sales")
    # a's 2003 row has no 2002 observation: its lag is missing, not 2001's value
    assert lag.isna().tolist() == [True, False, True, True, False, True, True, True]
    assert lag.iloc[1] == 10.0 and lag.iloc[4] == 5.0
    ee = panel.entry_exit().set_index("enterprise_id")
    assert ee.loc["b", "status"] == "exited" and ee.loc["b", "exit_year"] == 2002
    assert ee.loc["c", "status"] == "attrited"  # last seen 2002, cluster surveyed to 2003, no exit
    assert ee.loc["a", "status"] == "censored"
    lin = panel.lineage().set_index("enterprise_id")
    assert lin.loc["c", "root_id"] == "a" and lin.loc["c", "depth"] == 2 and lin.loc["d", "depth"] == 0
    cy = panel.with_cluster_year().cluster_year.set_index("year")
    assert cy.loc[2001, "n_entries"] == 1 and cy.loc[2002, "n_entries"] == 1
    assert cy.loc[2002, "n_exits"] == 1
    # 2003: sales a=13, d=50 -> shares .206, .794
    s = np.array([13, 50]) / 63
    assert cy.loc[2003, "hhi"] == pytest.approx((s**2).sum())
    assert cy.loc[2003, "cr4"] == pytest.approx(1.0)


def test_cli_schema_and_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cluster_econ.cli", "schema", "manager"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "schooling_years" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "cluster_econ.cli", "normalize", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "--quarantine" in proc.stdout


def test_deflation_to_real_values(tmp_path: Path, cluster_csv: tuple[Path, Path]) -> None:
    data, spec = cluster_csv
    (tmp_path / "cpi.csv").write_text("country,year,price_index\nETH,2004,1.0\nETH,2005,1.1\nETH,2006,1.25\n")
    spec.write_text(
        spec.read_text() + "  currency: {const: ETB}\n"
        "deflate: {columns: [sales, material_cost], deflator: cpi.csv, base_year: 2004}\n"
    )
    panel = ce.normalize(data, mapping=spec)
    ey = panel.enterprise_year.set_index(["enterprise_id", "year"])
    assert ey.loc[("ET-1", 2006), "sales"] == pytest.approx(150_000 / 1.25)
    assert ey.loc[("ET-1", 2004), "sales"] == pytest.approx(120_000)
    # value added is derived from the deflated values
    assert ey.loc[("ET-1", 2006), "value_added"] == pytest.approx((150_000 - 70_000) / 1.25)
    assert (ey["price_base_year"] == 2004).all() and (ey["currency"] == "ETB").all()
    (tmp_path / "cpi.csv").write_text("country,year,price_index\nETH,2004,1.0\n")
    with pytest.raises(ce.errors.MappingError, match=r"no deflator for ETH 2006 \(2 rows; base year 2004\)"):
        ce.normalize(data, mapping=spec)


def test_schooling_of_the_manager_in_charge_each_year() -> None:
    from cluster_econ.panel.derive import manager_schooling_by_year

    ent = pd.DataFrame({"enterprise_id": ["a", "b"], "cluster_id": "k", "country": "KEN"})
    ey = pd.DataFrame({"enterprise_id": ["a", "a", "a", "b", "b"], "year": [2000, 2005, 2010, 2000, 2010]})
    man = pd.DataFrame({
        "enterprise_id": ["a", "a", "b", "b"], "manager_id": ["2", "1", "2", "1"],
        "generation": [1, 2, 1, 2], "start_year": [1990, 2006, 1995, 2005],
        "schooling_years": [8.0, 16.0, np.nan, 12.0],
    })
    panel = ce.Panel({"enterprise": ent, "enterprise_year": ey, "manager": man})
    got = manager_schooling_by_year(panel, ey).tolist()
    # a: founder (8) until the successor starts in 2006 (16); b: founder's schooling unknown -> missing
    assert got[:3] == [8.0, 8.0, 16.0]
    assert np.isnan(got[3]) and got[4] == 12.0


def test_current_manager_schooling_is_never_borrowed() -> None:
    from cluster_econ.panel.derive import current_manager_schooling

    man = pd.DataFrame({"enterprise_id": ["a", "a", "b"], "manager_id": ["1", "2", "1"], "generation": [1, 2, 1],
                        "schooling_years": [8.0, np.nan, 12.0]})
    ent = pd.DataFrame({"enterprise_id": ["a", "b"], "cluster_id": "k", "country": "KEN"})
    ey = pd.DataFrame({"enterprise_id": ["a", "b"], "year": [2000, 2000]})
    got = current_manager_schooling(ce.Panel({"enterprise": ent, "enterprise_year": ey, "manager": man}))
    # a's current manager (generation 2) did not report schooling: missing, not the founder's 8 years
    assert np.isnan(got["a"]) and got["b"] == 12.0


def test_exits_are_unknown_where_the_survey_recorded_none() -> None:
    ent = pd.DataFrame({"enterprise_id": ["a", "b", "c", "d"], "cluster_id": ["k", "k", "m", "m"], "country": "KEN"})
    ey = pd.DataFrame({"enterprise_id": ["a", "a", "b", "c", "c", "d"], "year": [2000, 2001, 2000, 2000, 2001, 2000],
                       "exit": [False, False, True, None, None, None]})
    cy = ce.Panel({"enterprise": ent, "enterprise_year": ey}).with_cluster_year().cluster_year.set_index(
        ["cluster_id", "year"])
    # cluster k asked the exit question: its zero is a zero; cluster m never did: unknown, not zero
    assert cy.loc[("k", 2000), "n_exits"] == 1 and cy.loc[("k", 2001), "n_exits"] == 0
    assert cy.loc[("k", 2001), "exit_rate"] == 0.0
    assert pd.isna(cy.loc[("m", 2000), "n_exits"]) and pd.isna(cy.loc[("m", 2001), "exit_rate"])
    no_question = ce.Panel({"enterprise": ent, "enterprise_year": ey.drop(columns="exit")})
    assert no_question.with_cluster_year().cluster_year["exit_rate"].isna().all()
