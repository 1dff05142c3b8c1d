"""Phase detection on the demo universe (cluster_econ.datasets.demo, SYNTHETIC data whose true
phases are known) and the ``phases`` command line.

Accuracy measured on the demo panel (share of the 360 cluster-years labelled right; mean
absolute error of phase start years): rules 0.961 (0.39 years), breaks 0.942 (0.62), hmm 1.000
(0.00), none unknown (the demo has every signal). An earlier note gave rules 0.972 (0.28) and
breaks 0.939 (0.65); those figures do not reproduce at the commit that wrote them (63732f9 gives
the ones above), and the signal check and the HMM's state naming added later leave every label
unchanged. On five other seeds of the same simulation (0-4) the ranges were rules 0.96-0.99,
breaks 0.91-0.95, hmm 0.997-1.000. The floors below (FLOORS, and the 1.5-year bound on the start
years) are regression guards derived from these measurements of our own, not statistical
tolerances: they sit a few points under the lowest measured value, so that a change which makes
detection worse fails, and far above the best constant labelling (0.40, everything quantity
expansion), which the test checks as well.
"""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from cluster_econ import phases as ph
from cluster_econ.datasets import demo

FLOORS = {"rules": 0.93, "breaks": 0.88, "hmm": 0.95}
STAGNANT = {"KEN-NAIROBI-GARMENT", "ETH-ADDISABABA-FOOTWEAR", "GHA-KUMASI-METALWORK",
            "KEN-NAIROBI-METALWORK"}


@pytest.fixture(scope="module")
def demo_cy() -> pd.DataFrame:
    return demo().with_cluster_year().cluster_year


@pytest.mark.parametrize("method", ["rules", "breaks", "hmm"])
def test_demo_accuracy(demo_cy: pd.DataFrame, method: str) -> None:
    """Accuracy on the demo against its true phases, above regression floors derived from our own
    measurements (module docstring); stagnation found exactly in the clusters that stagnate."""
    truth = demo_cy[["cluster_id", "year", "phase"]]
    constant = truth["phase"].value_counts(normalize=True).max()
    res = ph.detect(demo_cy.drop(columns="phase"), method=method)
    acc = ph.accuracy(res, truth)
    assert acc.n_compared == len(demo_cy)
    assert acc.overall >= FLOORS[method], acc.summary()
    assert acc.overall > constant + 0.4
    assert acc.start_mae <= 1.5
    # every phase is found, and stagnation only in the clusters that never move on
    assert set(res.cluster_year["phase"]) == set(ph.PHASES)
    stag = set(res.cluster_year.loc[res.cluster_year["phase"] == "stagnation", "cluster_id"])
    assert stag == STAGNANT


def test_demo_panel_input_aggregates_cluster_year() -> None:
    panel = demo()                          # cluster_year holds only price_index and phase
    res = ph.detect(panel, method="rules")
    assert "firm_growth" in res.cluster_year and len(res.cluster_year) == 360


def _parser() -> argparse.ArgumentParser:
    from cluster_econ.phases.command import register
    parser = argparse.ArgumentParser(prog="cluster-econ")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_phases_on_a_cluster_year_file(tmp_path, capsys) -> None:
    from cluster_econ.phases.synthetic import synthetic_cluster_year
    cy = synthetic_cluster_year([[("initiation", 4), ("quantity_expansion", 8),
                                  ("quality_improvement", 8)]], seed=3)
    src = tmp_path / "cy.csv"
    cy.drop(columns="phase").to_csv(src, index=False)
    for method, out in (("rules", "out.parquet"), ("breaks", "out.csv")):
        args = _parser().parse_args(["phases", str(src), "--method", method,
                                     "--out", str(tmp_path / out)])
        assert args.func(args) == 0
        printed = capsys.readouterr().out
        assert "C01: " in printed and "quality_improvement" in printed
        back = (pd.read_parquet if out.endswith("parquet") else pd.read_csv)(tmp_path / out)
        assert len(back) == len(cy) and set(back["phase"]) <= set(ph.PHASES)
    assert "phase transitions" in printed


def test_cli_phases_csv_neutralises_spreadsheet_formulas(tmp_path) -> None:
    """A cluster id that a spreadsheet would run as a formula comes out with a leading quote;
    the Parquet output keeps the id as it is (it is data, not a spreadsheet)."""
    from cluster_econ.phases.synthetic import synthetic_cluster_year
    evil = '=HYPERLINK("http://evil","x")'
    cy = synthetic_cluster_year([[("initiation", 4), ("quantity_expansion", 8),
                                  ("quality_improvement", 8)]], seed=3)
    cy["cluster_id"] = evil
    src = tmp_path / "cy.parquet"
    cy.drop(columns="phase").to_parquet(src, index=False)
    for name in ("out.csv", "out.parquet"):
        args = _parser().parse_args(["phases", str(src), "--out", str(tmp_path / name)])
        assert args.func(args) == 0
    text = (tmp_path / "out.csv").read_text()
    assert "'" + evil.replace('"', '""') in text
    assert not any(line.startswith("=") or ',=' in line for line in text.splitlines())
    back = pd.read_csv(tmp_path / "out.csv")
    assert (back["cluster_id"] == "'" + evil).all() and len(back) == len(cy)
    assert (pd.read_parquet(tmp_path / "out.parquet")["cluster_id"] == evil).all()
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("seed", ["-5", "1.5", "x"])
def test_cli_phases_rejects_a_bad_seed(seed, capsys) -> None:
    """A seed numpy cannot take is a usage error (exit 2, message naming --seed), not a traceback."""
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["phases", "demo", "--method", "hmm", "--seed", seed])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "non-negative integer" in err and "Traceback" not in err


def test_cli_phases_bad_input(tmp_path) -> None:
    from cluster_econ.errors import InputError
    args = _parser().parse_args(["phases", str(tmp_path / "missing")])
    with pytest.raises(InputError, match="no such file"):
        args.func(args)
    bad = tmp_path / "cy.txt"
    bad.write_text("x")
    args = _parser().parse_args(["phases", str(bad)])
    with pytest.raises(InputError, match="expected a panel directory"):
        args.func(args)


def test_cli_phases_on_panel_directory_and_demo(tmp_path, capsys) -> None:
    panel = demo()
    panel.to_parquet(str(tmp_path / "panel"))
    args = _parser().parse_args(["phases", str(tmp_path / "panel"), "--out",
                                 str(tmp_path / "labelled.parquet")])
    assert args.func(args) == 0
    out = pd.read_parquet(tmp_path / "labelled.parquet")
    assert len(out) == 360 and {"cluster_id", "year", "phase", "firm_growth"} <= set(out)
    args = _parser().parse_args(["phases", "demo", "--method", "hmm", "--seed", "1"])
    assert args.func(args) == 0
    assert "KEN-NAIROBI-GARMENT: initiation" in capsys.readouterr().out


def test_to_panel_puts_detected_phases_on_cluster_year() -> None:
    panel = demo()
    res = ph.detect(panel, method="rules")
    labelled = res.to_panel(panel)
    cy = labelled.cluster_year
    assert {"phase", "phase_given", "n_firms"} <= set(cy.columns)
    merged = cy.merge(res.phases, on=["cluster_id", "year"], suffixes=("", "_det"))
    assert len(merged) == 360 and (merged["phase"] == merged["phase_det"]).all()
    # the given (true) phases are kept beside the detected ones
    given = cy[["cluster_id", "year", "phase_given"]].merge(
        panel.cluster_year[["cluster_id", "year", "phase"]], on=["cluster_id", "year"])
    assert len(given) == 360 and (given["phase_given"] == given["phase"]).all()
