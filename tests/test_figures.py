"""Tests of cluster_econ.figures: content of each plot, files written, deterministic bytes."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from cluster_econ.estimate.result import Audit, Result, VcovInfo
from cluster_econ.figures import (
    FigureError,
    cluster_timeline,
    coefficient_plot,
    event_study_plot,
    km_plot,
)
from cluster_econ.figures.style import PALETTE, phase_color, phases

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.colors import to_hex  # noqa: E402


def cluster_year() -> pd.DataFrame:
    rng = np.random.default_rng(20240601)
    years = np.arange(1990, 2006)
    phase = ["initiation"] * 4 + ["quantity_expansion"] * 7 + ["quality_improvement"] * 5
    one = pd.DataFrame({
        "cluster_id": "C1", "year": years, "n_firms": np.arange(16) * 4 + 3,
        "n_entries": rng.integers(0, 9, 16), "n_exits": rng.integers(0, 4, 16),
        "price_index": np.linspace(1.0, 0.7, 16),
        "mean_log_tfp": np.r_[np.zeros(11), np.linspace(0.05, 0.4, 5)], "phase": phase})
    other = one.assign(cluster_id="C2", phase="stagnation")
    return pd.concat([one, other], ignore_index=True)


def png_text_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind in (b"tEXt", b"iTXt", b"zTXt", b"tIME"):
            chunks.append(kind + b":" + data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return chunks


def test_timeline_panels_and_phase_shading(tmp_path):
    fig = cluster_timeline(cluster_year(), "C1", path=[tmp_path / "t.png", tmp_path / "t.svg"])
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["Firms", "Entries", "Exits", "Price index",
                                               "Mean log tfp"]
    # the plotted series are the data of cluster C1
    line = axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1990, 2006))
    np.testing.assert_array_equal(line.get_ydata(), np.arange(16) * 4 + 3)
    # one shaded span per phase run, in the phase's colour, covering its years
    spans = [(to_hex(p.get_facecolor()), p.get_x(), p.get_x() + p.get_width())
             for p in axes[0].patches]
    assert spans == [(phase_color("initiation"), 1989.5, 1993.5),
                     (phase_color("quantity_expansion"), 1993.5, 2000.5),
                     (phase_color("quality_improvement"), 2000.5, 2005.5)]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "Initiation", "Quantity expansion", "Quality improvement"]
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ET.parse(tmp_path / "t.svg")  # well-formed XML


def test_phase_colours_are_one_per_phase():
    assert phases() == ("initiation", "quantity_expansion", "quality_improvement", "stagnation")
    colours = [phase_color(p) for p in phases()]
    assert len(set(colours)) == 4 and all(c in PALETTE for c in colours)


def test_timeline_errors_name_the_problem():
    with pytest.raises(FigureError, match="no rows for cluster_id 'C9'; the clusters are C1, C2"):
        cluster_timeline(cluster_year(), "C9")
    with pytest.raises(FigureError, match="missing column\\(s\\) tfp"):
        cluster_timeline(cluster_year(), "C1", series=["n_firms", "tfp"])
    bad = cluster_year()
    bad["n_firms"] = bad["n_firms"].astype(object)
    bad.loc[3, "n_firms"] = "many"
    with pytest.raises(FigureError, match="'n_firms' is not numeric in rows 3"):
        cluster_timeline(bad, "C1")
    with pytest.raises(FigureError, match=r"\.png or \.svg"):
        cluster_timeline(cluster_year(), "C1", path="t.pdf")


def test_same_inputs_same_bytes_png_and_svg(tmp_path):
    import matplotlib as mpl

    salt_before = mpl.rcParams["svg.hashsalt"]
    outputs = []
    for run in range(2):
        paths = [tmp_path / f"r{run}.png", tmp_path / f"r{run}.svg"]
        cluster_timeline(cluster_year(), "C2", path=paths)
        outputs.append([p.read_bytes() for p in paths])
    assert outputs[0] == outputs[1]
    png, svg = outputs[0]
    assert not any(b"Software" in c or c.startswith(b"tIME") for c in png_text_chunks(png))
    assert b"<dc:date>" not in svg and b"Matplotlib v" not in svg
    assert mpl.rcParams["svg.hashsalt"] == salt_before  # style does not leak


def _result(est: float, se: float) -> Result:
    """HC1 covariance, Stata ssc, normal reference distribution (df_resid None)."""
    return Result(params=pd.Series({"Intercept": 1.0, "schooling_years": est}),
                  cov=pd.DataFrame(np.diag([0.04, se ** 2]), index=["Intercept", "schooling_years"],
                                   columns=["Intercept", "schooling_years"]),
                  nobs=500, vcov_info=VcovInfo("HC1", "stata"), formula="y ~ schooling_years",
                  model="ols", engine="test", audit=Audit(n_input=500))


def test_coefficient_plot_from_results_uses_their_intervals(tmp_path):
    res = {"quality_improvement": _result(0.12, 0.03), "quantity_expansion": _result(0.02, 0.04)}
    fig = coefficient_plot(res, term="schooling_years", path=tmp_path / "c.svg")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Quantity expansion",
                                                           "Quality improvement"]
    assert ax.get_title() == "Schooling"
    for i, key in enumerate(["quantity_expansion", "quality_improvement"]):
        container = ax.containers[i]
        point = container.lines[0]
        assert point.get_ydata()[0] == pytest.approx(res[key].params["schooling_years"])
        seg = container.lines[2][0].get_segments()[0]
        ci = res[key].conf_int().loc["schooling_years"]
        assert seg[:, 1] == pytest.approx([ci["lower"], ci["upper"]])
        assert to_hex(point.get_color()) == phase_color(key)
    assert (tmp_path / "c.svg").exists()
    with pytest.raises(FigureError, match="no term 'age'"):
        coefficient_plot(res, term="age")


def test_coefficient_plot_from_frame():
    df = pd.DataFrame({"term": ["x", "x", "z"], "phase": ["a", "b", "a"],
                       "estimate": [1.0, 2.0, 3.0], "conf_low": [0.5, 1.5, 2.5],
                       "conf_high": [1.5, 2.5, 3.5]})
    with pytest.raises(FigureError, match="several terms"):
        coefficient_plot(df)
    fig = coefficient_plot(df, term="x")
    assert [c.lines[0].get_ydata()[0] for c in fig.axes[0].containers] == [1.0, 2.0]


def test_km_plot_curves_and_bands(tmp_path):
    t = np.arange(8.0)
    km = pd.concat([pd.DataFrame({"group": g, "time": t, "survival": np.exp(-h * t),
                                  "lower": np.exp(-h * t) * 0.9,
                                  "upper": np.minimum(1, np.exp(-h * t) * 1.1)})
                    for g, h in [("quality_improvement", 0.2), ("quantity_expansion", 0.05)]])
    fig = km_plot(km, path=tmp_path / "km.png")
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["Quantity expansion", "Quality improvement"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.exp(-0.05 * t))
    assert len(ax.collections) == 2  # one band per group
    assert (tmp_path / "km.png").stat().st_size > 0
    with pytest.raises(FigureError, match="missing column\\(s\\) upper"):
        km_plot(km.drop(columns="upper"))
    with pytest.raises(FigureError, match="survival outside"):
        km_plot(km.assign(survival=km["survival"] + 1))


def test_event_study_plot(tmp_path):
    df = pd.DataFrame({"rel_time": [2, -3, -2, 0, 1], "estimate": [0.3, 0.0, 0.01, 0.1, 0.2]})
    df["conf_low"], df["conf_high"] = df["estimate"] - 0.05, df["estimate"] + 0.05
    fig = event_study_plot(df, path=tmp_path / "es.svg")
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 6)
    np.testing.assert_array_equal(line.get_xdata(), [-3, -2, -1, 0, 1, 2])  # reference added at 0
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.01, 0.0, 0.1, 0.2, 0.3])
    assert any(ln.get_label().startswith("reference period") for ln in ax.lines)
    assert re.search(rb"<svg", (tmp_path / "es.svg").read_bytes())
    with pytest.raises(FigureError, match="several rows for rel_time = 0"):
        event_study_plot(pd.concat([df, df.iloc[[3]]]))


def test_timeline_on_the_demo_panel_shades_its_phases(tmp_path):
    from cluster_econ import datasets

    if not hasattr(datasets, "demo"):
        pytest.skip("demo panel not available")
    cy = datasets.demo().cluster_year
    cid = cy["cluster_id"].iloc[0]
    fig = cluster_timeline(cy, cid, path=tmp_path / "demo.png")
    one = cy[cy["cluster_id"] == cid].sort_values("year")
    runs = (one["phase"] != one["phase"].shift()).cumsum()
    expected = [(phase_color(g["phase"].iloc[0]), g["year"].min() - 0.5, g["year"].max() + 0.5)
                for _, g in one.groupby(runs, sort=True)]
    for ax in fig.axes:
        got = [(to_hex(p.get_facecolor()), p.get_x(), p.get_x() + p.get_width())
               for p in ax.patches]
        assert got == expected
    assert (tmp_path / "demo.png").stat().st_size > 0


def test_unknown_phases_get_distinct_colours():
    cy = cluster_year().query("cluster_id == 'C1'").copy()
    cy["phase"] = ["take-off"] * 8 + ["plateau"] * 8
    fig = cluster_timeline(cy, "C1", series=["n_firms"])
    colours = [to_hex(p.get_facecolor()) for p in fig.axes[0].patches]
    assert len(colours) == 2 and colours[0] != colours[1]
    assert not set(colours) & {phase_color(p) for p in phases()}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["take-off", "Plateau"]


def test_km_plot_of_the_survival_helper_output_starts_at_one():
    lifelines_datasets = pytest.importorskip("lifelines.datasets")
    from cluster_econ.estimate import kaplan_meier

    km = kaplan_meier(lifelines_datasets.load_rossi(), "week", "arrest", group="fin")
    fig = km_plot(km, labels={0: "No aid", 1: "Financial aid"}, xlabel="Weeks")
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["No aid", "Financial aid"]
    for line, g in zip(ax.lines, [0, 1], strict=True):
        part = km[km["group"] == g].sort_values("time")
        assert line.get_xdata()[0] == 0.0 and line.get_ydata()[0] == 1.0
        np.testing.assert_allclose(line.get_xdata()[1:], part["time"])
        np.testing.assert_allclose(line.get_ydata()[1:], part["survival"])


def test_event_study_from_results_is_deterministic(tmp_path):
    """Event-study figures straight from aggte("dynamic") (with its uniform band) and from sunab()."""
    md = pytest.importorskip("moderndid")
    import cluster_econ as ce

    d = md.load_mpdta().to_pandas()
    dyn = ce.att_gt(d, "lemp", "year", "countyreal", "first.treat", est_method="reg").aggte("dynamic")
    frame = ce.figures.event_study_frame(dyn)
    assert list(frame["rel_time"]) == [-3, -2, -1, 0, 1, 2, 3]
    assert (frame["band_low"] <= frame["conf_low"]).all()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    event_study_plot(dyn, path=a)
    event_study_plot(dyn, path=b)
    assert a.read_bytes() == b.read_bytes()
    sa = ce.feols("lemp ~ sunab(g, year) | countyreal + year", d.rename(columns={"first.treat": "g"}),
                  vcov={"CRV1": "countyreal"})
    assert list(ce.figures.event_study_frame(sa)["rel_time"]) == [-4, -3, -2, 0, 1, 2, 3]
    event_study_plot(sa, path=tmp_path / "sa.svg")
