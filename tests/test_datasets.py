"""Tests of cluster_econ.datasets: the demo universe and the public data loaders.

The public loaders are checked against numbers printed in textbooks (the data must be the copy
the books used) and against an independent copy where one exists (lifelines' Rossi data).
Printed-value checks refit by ordinary least squares with numpy (coefficients only, so no
standard-error convention is involved).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster_econ import datasets
from cluster_econ.errors import InputError
from cluster_econ.schema.validate import validate


# -- demo universe -----------------------------------------------------------------------------
def test_demo_is_synthetic_valid_and_of_the_promised_size():
    p = datasets.demo()
    assert p.metadata["synthetic"] is True
    assert p.metadata["label"] == "cluster_econ demo universe (SYNTHETIC)"
    assert p.metadata["seed"] == datasets.DEMO_SEED
    assert validate(p, mode="strict").ok
    assert 3000 <= len(p.enterprise) <= 5500
    assert 40_000 <= len(p.enterprise_year) <= 70_000
    assert p.enterprise["cluster_id"].nunique() == 12
    assert set(p.enterprise["country"]) == {"JPN", "TWN", "CHN", "KEN", "ETH", "GHA"}
    assert set(p.enterprise["product_complexity"]) == {"simple", "complex"}
    assert p.enterprise["industry_isic"].str.fullmatch(r"[0-9]{4}").all()
    phases = set(p.cluster_year["phase"])
    assert phases == {"initiation", "quantity_expansion", "quality_improvement", "stagnation"}
    assert "rct_assignment" in p


def test_demo_returns_independent_identical_copies():
    a = datasets.demo()
    b = datasets.demo()
    for name in a.tables:
        pd.testing.assert_frame_equal(a[name], b[name])
    a.enterprise_year.loc[0, "sales"] = -1.0
    a.metadata["label"] = "changed"
    c = datasets.demo()
    assert c.enterprise_year.loc[0, "sales"] != -1.0
    assert c.metadata["label"] == "cluster_econ demo universe (SYNTHETIC)"


def test_demo_truth_matches_demo():
    truth = datasets.demo_truth()
    p = datasets.demo()
    assert set(truth.phase_starts["cluster_id"]) == set(p.enterprise["cluster_id"])
    merged = p.cluster_year.merge(truth.cluster_year, on=["cluster_id", "year"])
    assert len(merged) == len(p.cluster_year)
    assert (merged["phase_x"] == merged["phase_y"]).all()
    assert truth.schooling_slopes["new_product"]["quality_improvement"] > \
        truth.schooling_slopes["new_product"]["quantity_expansion"]
    truth.firms.loc[0, "origin"] = "changed"
    assert datasets.demo_truth().firms.loc[0, "origin"] != "changed"


# -- jtrain ------------------------------------------------------------------------------------
def test_jtrain_raw_reproduces_wooldridge_example_4_7():
    df = datasets.jtrain()
    assert df.shape == (471, 30)
    s = df[(df["year"] == 1987) & (df["union"] == 0)].dropna(
        subset=["lscrap", "hrsemp", "lsales", "lemploy"])
    X = np.column_stack([np.ones(len(s)), s["hrsemp"], s["lsales"], s["lemploy"]])
    beta = np.linalg.lstsq(X, s["lscrap"].to_numpy(), rcond=None)[0]
    # Wooldridge, Introductory Econometrics, Example 4.7: 12.46, -.029, -.962, .761; n = 29
    assert len(s) == 29
    printed = np.array([12.46, -0.029, -0.962, 0.761])
    half_last_digit = np.array([0.005, 0.0005, 0.0005, 0.0005])
    assert (np.abs(beta - printed) <= half_last_digit).all(), beta


def test_jtrain_panel_maps_and_keeps_everything():
    raw = datasets.jtrain()
    p = datasets.jtrain_panel()
    assert validate(p, mode="strict").ok
    assert p.metadata["synthetic"] is False and "Holzer" in p.metadata["citation"]
    ey = p.enterprise_year
    assert len(ey) == len(raw) and p.enterprise["enterprise_id"].nunique() == 157
    assert (ey["enterprise_id"] == raw["fcode"].astype(int).astype(str)).all()
    pd.testing.assert_series_equal(ey["sales"], raw["sales"].astype(float), check_names=False)
    pd.testing.assert_series_equal(ey["employment"], raw["employ"].astype(float), check_names=False)
    for col in raw.columns:
        if col not in ("fcode", "year", "sales", "employ"):
            pd.testing.assert_series_equal(ey[f"src_{col}"], raw[col], check_names=False)
    assert (ey["currency"] == "USD").all() and ey["price_base_year"].isna().all()
    same = datasets.jtrain(raw=False)
    pd.testing.assert_frame_equal(same.enterprise_year, ey)


# -- Grunfeld, EmplUK, Rossi ----------------------------------------------------------------------
def test_grunfeld_reproduces_baltagi_pooled_ols():
    g = datasets.grunfeld()
    assert g.shape == (200, 5) and g["firm"].nunique() == 10
    X = np.column_stack([np.ones(len(g)), g["value"], g["capital"]])
    beta = np.linalg.lstsq(X, g["inv"].to_numpy(), rcond=None)[0]
    # Baltagi, Econometric Analysis of Panel Data, Table 2.1 (OLS): -42.714, .1156, .2307
    printed = np.array([-42.714, 0.1156, 0.2307])
    half_last_digit = np.array([0.0005, 0.00005, 0.00005])
    assert (np.abs(beta - printed) <= half_last_digit).all(), beta
    p = datasets.grunfeld(raw=False)
    assert validate(p, mode="strict").ok
    assert (p.enterprise_year["price_base_year"] == 1947).all()
    np.testing.assert_array_equal(p.enterprise_year["investment"], g["inv"])
    np.testing.assert_array_equal(p.enterprise_year["src_value"], g["value"])


def test_empluk_panel():
    e = datasets.emplUK()
    assert e.shape == (1031, 7)
    assert e["firm"].nunique() == 140 and (e["year"].min(), e["year"].max()) == (1976, 1984)
    p = datasets.emplUK(raw=False)
    assert validate(p, mode="strict").ok
    np.testing.assert_allclose(p.enterprise_year["employment"], e["emp"] * 1000)
    assert {"src_sector", "src_wage", "src_capital", "src_output"} <= set(p.enterprise_year.columns)


def test_rossi_matches_lifelines_copy():
    lifelines = pytest.importorskip("lifelines")
    r = datasets.rossi()
    other = lifelines.datasets.load_rossi()
    assert len(r) == len(other) == 432
    yes = {"yes": 1, "no": 0}
    mapped = pd.DataFrame({
        "week": r["week"], "arrest": r["arrest"], "fin": r["fin"].map(yes), "age": r["age"],
        "race": r["race"].map({"black": 1, "other": 0}), "wexp": r["wexp"].map(yes),
        "mar": r["mar"].map({"married": 1, "not married": 0}), "paro": r["paro"].map(yes),
        "prio": r["prio"],
    })
    pd.testing.assert_frame_equal(mapped.astype("int64"), other[mapped.columns].astype("int64"))
    with pytest.raises(ValueError, match="no canonical mapping"):
        datasets.rossi(raw=False)


def test_missing_rdataset_is_a_clear_input_error():
    from cluster_econ.datasets.public import _rdataset

    with pytest.raises(InputError, match="no data set plm/NoSuchTable"):
        _rdataset("plm", "NoSuchTable")
