"""Validation that keeps what is good, reports everything at once, and agrees with normalize (issue 10,
items 4 and 8): cell-level quarantine, rejected rows that keep their original values, foreign-key
cascades counted apart, strict errors with every kind of violation, infinite values, CR4 <= 1, and a
property-based check that every output of normalize passes validate."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CLUSTER_MAPPING
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cluster_econ as ce
from cluster_econ.errors import MappingError, SchemaError
from cluster_econ.schema.validate import validate

HEADER = "firm,year,product,sales,materials,workers,newprod,educ,founded,notes\n"


def normalize_text(tmp_path: Path, rows: str, mapping: str = CLUSTER_MAPPING, **kw: object) -> ce.Panel:
    data = tmp_path / "round.csv"
    data.write_text(HEADER + rows, encoding="utf-8")
    spec = tmp_path / "map.yaml"
    spec.write_text(mapping, encoding="utf-8")
    return ce.normalize(data, mapping=spec, **kw)


def test_strict_reports_every_kind_of_violation_together(tmp_path: Path) -> None:
    rows = (
        "1,2004,shoes,120,60,12,1,12,1990,\n"
        "1,2004,shoes,999,60,12,1,12,1990,\n"  # the same enterprise-year with other values
        "2,2004,sandals,80,50,5,2,6,1700,\n"  # founded before 1800
        "3,2004,boots,300,120,40,1,45,1985,\n"  # 45 years of schooling
        "4,2004,boots,eighty,120,40,1,6,1985,\n"  # text in a numeric column
        "5,2004,boots,inf,120,40,1,6,1985,\n"  # an infinite value
    )
    with pytest.raises(SchemaError) as err:
        normalize_text(tmp_path, rows)
    msg = str(err.value)
    for expected in (
        "duplicate enterprise-year with different values: 1 enterprise-year(s)",
        "enterprise ET-1, year 2004: sales, value_added differ (round.csv row 1, round.csv row 2)",
        "enterprise.year_established: minimum: below 1800: 1 row(s) in round.csv, rows 3; values 1700",
        "manager.schooling_years: maximum: above 30: 1 row(s) in round.csv, rows 4; values 45",
        "enterprise_year.sales: type: not a valid number: 1 row(s) in round.csv, rows 5; values 'eighty'",
        "enterprise_year.sales: finite: infinite value: 1 row(s) in round.csv, rows 6",
    ):
        assert expected in msg, expected
    table = err.value.violations
    assert {"enterprise", "enterprise_year", "manager"} <= set(table["table"])


def test_quarantine_sets_bad_values_missing_cell_by_cell(tmp_path: Path) -> None:
    mapping = CLUSTER_MAPPING + "  industry_isic: {from: notes}\n"
    rows = (
        "1,2004,shoes,-120,60,12,1,12,1990,15\n"  # negative sales
        "2,2004,sandals,80,50,5,2,45,1700,1\n"  # schooling 45, founded 1700, a one-digit industry code
        "3,2004,boots,inf,120,40,1,16,1985,1520\n"  # infinite sales
    )
    panel = normalize_text(tmp_path, rows, mapping, mode="quarantine")
    # nothing here is a key or required: every row and enterprise stays
    assert len(panel.enterprise_year) == 3 and len(panel.enterprise) == 3
    ey = panel.enterprise_year.set_index("enterprise_id")
    assert np.isnan(ey.loc["ET-1", "sales"]) and np.isnan(ey.loc["ET-3", "sales"])
    assert ey.loc["ET-1", "material_cost"] == 60_000  # the rest of the row is kept
    ent = panel.enterprise.set_index("enterprise_id")
    assert pd.isna(ent.loc["ET-2", "year_established"]) and pd.isna(ent.loc["ET-2", "industry_isic"])
    assert ent.loc["ET-3", "industry_isic"] == "1520"
    cells = panel.rejects["cells"]
    assert list(cells.columns) == ["table", "column", "rule", "row", "source", "key", "value"]
    got = {(r.table, r.column, r.row, r.key, r.value) for r in cells.itertuples()}
    assert ("enterprise_year", "sales", 1, "ET-1/2004", "-120000.0") in got
    assert ("enterprise_year", "sales", 3, "ET-3/2004", "inf") in got
    assert ("enterprise", "year_established", 2, "ET-2", "1700") in got
    assert ("enterprise", "industry_isic", 2, "ET-2", "1") in got
    assert ("manager", "schooling_years", 2, "ET-2/1", "45") in got
    rule = cells.set_index(["table", "column", "row"])["rule"]
    assert rule[("enterprise_year", "sales", 3)] == "finite: infinite value"
    assert rule[("enterprise", "industry_isic", 2)] == "pattern: does not match ^[0-9]{2,4}$"
    assert set(cells["source"]) == {"round.csv"}
    # the audit says what was set missing; no row was rejected
    notes = panel.audit[panel.audit["step"] == "note"]["reason"]
    assert notes.str.contains("sales: finite: infinite value: 1 value").any()
    assert panel.audit_summary()["rejected"].sum() == 0
    # the quarantined panel passes validation, cluster-year aggregates included
    assert validate(panel, mode="strict").ok


def test_rejected_rows_keep_their_original_values_and_cascades_count_apart(tmp_path: Path) -> None:
    mapping = CLUSTER_MAPPING.replace("country: {const: ETH}", "country: {from: notes}")
    rows = (
        "1,2004,shoes,120,60,12,1,12,1990,ETH\n"
        "2,2004,sandals,eighty,50,5,2,6,2001,ethiopia\n"  # a bad country: the enterprise goes
        "2,2006,sandals,90,50,5,2,6,2001,ethiopia\n"
        "3,20x4,boots,300,120,40,1,16,1985,ETH\n"  # a bad year (key): this row goes
        "3,2006,boots,310,130,38,2,16,1985,ETH\n"
    )
    data = tmp_path / "round.csv"
    data.write_text(HEADER + rows, encoding="utf-8")
    spec = tmp_path / "map.yaml"
    spec.write_text(mapping, encoding="utf-8")
    panel = ce.normalize(data, mapping=spec, mode="quarantine")
    cascaded = {t: int(r["_cascade"].sum()) for t, r in panel.rejects.items() if t != "cells"}
    own = {t: int((~r["_cascade"].astype(bool)).sum()) for t, r in panel.rejects.items() if t != "cells"}
    assert own == {"enterprise": 1, "enterprise_year": 1, "manager": 0}
    assert cascaded == {"enterprise": 0, "enterprise_year": 2, "manager": 1}
    assert sorted(panel.enterprise["enterprise_id"]) == ["ET-1", "ET-3"]
    rej = panel.rejects["enterprise_year"].set_index("_source_row")
    # the rejected rows keep what the file said, the offending values included
    assert rej.loc[4, "year"] == "20x4" and "year: type: not a valid integer" in rej.loc[4, "_reject_reason"]
    assert rej.loc[2, "sales"] == "eighty"
    reason = rej.loc[2, "_reject_reason"]
    assert "enterprise_id: foreignKey cascade: its enterprise.enterprise_id was rejected" in reason
    assert "sales: type: not a valid number" in reason
    # its bad sales alone would only have been set missing: the row goes because its enterprise went
    assert bool(rej.loc[2, "_cascade"]) is True and bool(rej.loc[3, "_cascade"]) is True
    assert bool(rej.loc[4, "_cascade"]) is False
    assert panel.rejects["enterprise"]["country"].tolist() == ["ethiopia"]
    # every source row accounted for
    s = panel.audit_summary().set_index("table").loc["enterprise_year"]
    assert s["read"] == 5 and s["kept"] == 2 and s["rejected"] == 3
    assert panel.audit["reason"].str.contains("foreignKey cascade").any()


def test_infinite_values_fail_like_out_of_range_ones() -> None:
    ent = pd.DataFrame({"enterprise_id": ["a", "b"], "cluster_id": "k", "country": "KEN"})
    ey = pd.DataFrame({"enterprise_id": ["a", "b"], "year": [2000, 2000], "sales": [np.inf, 5.0],
                       "investment": [-np.inf, 1.0]})  # investment has no bounds: still must be finite
    panel = ce.Panel({"enterprise": ent, "enterprise_year": ey})
    with pytest.raises(SchemaError, match=r"sales: finite: infinite value: 1 row\(s\), rows 1; values inf"):
        validate(panel)
    report = validate(panel, mode="report")
    assert [v.column for v in report.violations] == ["sales", "investment"]
    quarantined = validate(panel, mode="quarantine").panel
    cy = quarantined.with_cluster_year().cluster_year
    # the infinite cell is missing and logged, not silently dropped from the cluster total
    assert cy["total_sales"].iloc[0] == 5.0 and len(quarantined.rejects["cells"]) == 2


def test_division_by_zero_in_a_derivation_never_reaches_the_panel(tmp_path: Path) -> None:
    mapping = CLUSTER_MAPPING + "  price_main_product: {derive: sales / employment}\n"
    panel = normalize_text(tmp_path, "1,2004,shoes,120,60,0,1,12,1990,\n2,2004,shoes,80,50,5,2,6,2001,\n",
                           mapping, mode="quarantine")
    price = panel.enterprise_year.set_index("enterprise_id")["price_main_product"]
    assert np.isnan(price["ET-1"]) and price["ET-2"] == 16_000
    assert validate(panel).ok


@pytest.mark.parametrize("sales", [[0.2, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4, 0.5], [1e-300, 1.0, 3.0]])
def test_cr4_is_never_above_one(sales: list[float]) -> None:
    n = len(sales)
    ent = pd.DataFrame({"enterprise_id": [f"f{i}" for i in range(n)], "cluster_id": "k", "country": "KEN"})
    ey = pd.DataFrame({"enterprise_id": ent["enterprise_id"], "year": 2000, "sales": sales})
    cy = ce.Panel({"enterprise": ent, "enterprise_year": ey}).with_cluster_year().cluster_year
    expected = sum(sorted(sales)[-4:]) / sum(sales)
    assert cy["cr4"].iloc[0] <= 1.0 and cy["cr4"].iloc[0] == pytest.approx(expected, rel=1e-15)
    if n <= 4:
        assert cy["cr4"].iloc[0] == 1.0  # 3 firms: exactly 1 (the sum of shares gave 1.0000000000000002)
    assert validate(ce.Panel({"enterprise": ent, "enterprise_year": ey, "cluster_year": cy})).ok


# -- every output of normalize passes validate -------------------------------------------------------
PROPERTY_MAPPING = """\
spec_version: 1
name: generated
recodes:
  yn12: {1: true, 2: false}
columns:
  enterprise_id: {template: "F-{firm}"}
  cluster_id: {from: cluster}
  country: {from: country}
  year: {from: year}
  sales: {from: sales}
  material_cost: {from: materials}
  employment: {from: workers}
  export_share: {from: exports}
  domestic_sales_share: {from: domestic}
  new_product: {from: newprod, recode: yn12, unmatched: missing}
  schooling_years: {from: educ}
  year_established: {from: founded}
  industry_isic: {from: isic}
"""

money = st.one_of(
    st.floats(min_value=-1e6, max_value=1e12, allow_nan=False),
    st.sampled_from([0.1, 0.2, 0.7, 1 / 3, 0.0]),
    st.sampled_from(["eighty", "", "inf", "-inf", "1e400"]),
)
row = st.fixed_dictionaries(
    {
        "firm": st.integers(1, 6),
        "cluster": st.sampled_from(["c1", "c2"]),
        "country": st.sampled_from(["KEN", "ETH", "kenya", ""]),
        "year": st.one_of(st.integers(1995, 2005), st.sampled_from(["abc", "", "1700", "2001.5"])),
        "sales": money,
        "materials": money,
        "workers": st.one_of(st.integers(-3, 500), st.just("")),
        "exports": st.floats(min_value=0, max_value=150),
        "domestic": st.floats(min_value=0, max_value=150),
        "newprod": st.sampled_from([1, 2, 3, ""]),
        "educ": st.one_of(st.floats(min_value=-5, max_value=40), st.just("")),
        "founded": st.one_of(st.integers(1700, 2100), st.just("")),
        "isic": st.sampled_from(["15", "1", "1520", "abc", ""]),
    }
)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=12), strict=st.booleans())
def test_every_output_of_normalize_passes_validate(rows: list[dict[str, object]], strict: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "generated.csv"
        pd.DataFrame(rows).to_csv(data, index=False)
        spec = folder / "generated.yaml"
        spec.write_text(PROPERTY_MAPPING, encoding="utf-8")
        try:
            panel = ce.normalize(data, mapping=spec, mode="strict" if strict else "quarantine")
        except SchemaError:
            assert strict  # quarantine keeps what is good instead of failing
            return
        except MappingError:
            return  # e.g. every year missing: nothing to map
        assert validate(panel, mode="strict").ok
        # and the folder it writes passes `cluster-econ validate`, manifest included
        panel.to_parquet(folder / "panel")
        assert validate(str(folder / "panel"), mode="strict").ok
        # every source row is accounted for
        s = panel.audit_summary().set_index(["source", "table"]).loc[("generated.csv", "enterprise_year")]
        assert s["read"] + s["added"] == s["kept"] + s["dropped"] + s["rejected"] == len(rows)
        assert s["kept"] == len(panel.enterprise_year)


def test_report_counts_rejections_and_cascades_apart() -> None:
    ent = pd.DataFrame({"enterprise_id": ["a", "b", "c"], "cluster_id": "k", "country": ["KEN", "kenya", "KEN"],
                        "spinoff_parent_id": [None, None, "b"]})
    ey = pd.DataFrame({"enterprise_id": ["a", "b", "b", "c", "z"], "year": [2000, 2000, 2001, 2000, 2000]})
    report = validate(ce.Panel({"enterprise": ent, "enterprise_year": ey}), mode="quarantine")
    assert report.rejected == {"enterprise": 1, "enterprise_year": 1}  # b's country; z has no enterprise
    assert report.cascaded == {"enterprise_year": 2}  # b's two years follow it
    assert report.cells == {"enterprise": 1}  # c's parent was rejected: the reference is set missing
    assert "2 row(s) rejected by foreign-key cascade" in report.quarantine_summary()
    assert report.panel.enterprise["spinoff_parent_id"].isna().all()
    assert sorted(report.panel.enterprise_year["enterprise_id"]) == ["a", "c"]
