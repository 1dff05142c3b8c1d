"""The shipped World Bank Enterprise Surveys mapping on WBES-style files: one country round, a round
that lacks questions, bad answers in a few establishments, and a pooled multi-country, multi-year file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_wbes_frame, write_wbes_dta

import cluster_econ as ce
from cluster_econ.cli import main
from cluster_econ.errors import EstimationError, MappingError, SchemaError


def wbes_round(n: int = 240, seed: int = 3, start_id: int = 1000) -> pd.DataFrame:
    """A standardized country round: a4a is the industry sampling stratum (one-digit survey codes
    here, as many rounds have), d1a2 the 4-digit ISIC Rev. 3.1 code, and the three sampling weights."""
    rng = np.random.default_rng(seed)
    frame = make_wbes_frame(n=n, seed=seed, start_id=start_id)
    frame["a4a"] = rng.choice([1, 2, 3], n)  # not ISIC codes: survey strata
    frame["d1a2"] = rng.choice([1520, 1810, 2921, 3610], n)
    frame.loc[5, "d1a2"] = -9  # don't know
    frame["wmedian"] = rng.uniform(1, 40, n).round(3)
    frame["wstrict"] = (frame["wmedian"] * 0.8).round(3)
    frame["wweak"] = (frame["wmedian"] * 1.3).round(3)
    return frame


def reported(panel: ce.Panel) -> pd.DataFrame:
    ey = panel.enterprise_year
    return ey[~ey["recall"].fillna(False).astype(bool)].set_index("enterprise_id")


def test_isic_from_d1a2_stratum_and_weights_in_their_own_columns(tmp_path: Path) -> None:
    frame = wbes_round()
    path = write_wbes_dta(tmp_path / "Kenya2013.dta", frame)
    panel = ce.normalize(path, mapping="wbes", params={"country": "KEN", "year": 2013})
    ent = panel.enterprise.set_index("enterprise_id")
    # every establishment kept: the stratum codes no longer fail the ISIC pattern
    assert len(ent) == 240
    ids = frame["idstd"].astype(str)
    assert list(ent.loc[ids, "industry_isic"].iloc[:5]) == [str(v) if v > 0 else None for v in frame["d1a2"].iloc[:5]]
    assert pd.isna(ent.loc[str(frame.loc[5, "idstd"]), "industry_isic"])  # -9 don't know
    assert set(ent["industry_isic_revision"]) == {"3.1"}
    rep = reported(panel)
    assert list(rep.loc[ids, "sampling_stratum"]) == frame["a4a"].astype(str).tolist()
    np.testing.assert_array_equal(rep.loc[ids, "sampling_weight"].to_numpy(dtype=float), frame["wmedian"])
    np.testing.assert_array_equal(rep.loc[ids, "sampling_weight_strict"].to_numpy(dtype=float), frame["wstrict"])
    np.testing.assert_array_equal(rep.loc[ids, "sampling_weight_weak"].to_numpy(dtype=float), frame["wweak"])
    # clusters are country x region x stratum
    assert ent["cluster_id"].str.fullmatch(r"KEN-[12]-[123]").all()
    # recalled rows carry no weight of their own
    ey = panel.enterprise_year
    assert ey.loc[ey["recall"].fillna(False).astype(bool), "sampling_weight"].isna().all()
    panel4 = ce.normalize(path, mapping="wbes", params={"country": "KEN", "year": 2013, "isic_revision": 4})
    assert set(panel4.enterprise["industry_isic_revision"]) == {"4"}


def test_a_round_without_some_questions_is_missing_there_not_an_error(tmp_path: Path) -> None:
    frame = wbes_round().drop(columns=["d1a2", "h1", "n2b", "wmedian", "wstrict", "wweak", "l2"])
    path = write_wbes_dta(tmp_path / "Ghana2007.dta", frame)
    panel = ce.normalize(path, mapping="wbes", params={"country": "GHA", "year": 2007})
    assert len(panel.enterprise) == 240
    notes = "\n".join(panel.audit.loc[panel.audit["step"] == "note", "reason"])
    for name, question in [
        ("industry_isic", "d1a2"),
        ("new_product", "h1"),
        ("energy_cost", "n2b"),
        ("sampling_weight", "wmedian"),
        ("employment", "l2"),
    ]:
        assert f"{name}: {question} not in Ghana2007.dta (optional): left missing for this round" in notes
    rep = reported(panel)
    assert rep["new_product"].isna().all() and rep["sampling_weight"].isna().all()
    # value added needs energy cost, which this round lacks: missing, never sales minus materials
    assert rep["value_added"].isna().all()
    assert rep["sales"].notna().sum() > 200


def test_bad_answers_keep_every_other_establishment(tmp_path: Path) -> None:
    frame = wbes_round()
    bad = {10: ("d3c", 150.0), 20: ("b5", 1750), 30: ("l1", -3.0)}  # share > 100, founded 1750, -3 workers
    for row, (col, value) in bad.items():
        frame.loc[row, col] = value
    path = write_wbes_dta(tmp_path / "Kenya2013.dta", frame)
    with pytest.raises(SchemaError) as err:
        ce.normalize(path, mapping="wbes", params={"country": "KEN", "year": 2013})
    message = str(err.value)
    assert "export_share" in message and "year_established" in message and "employment" in message
    panel = ce.normalize(path, mapping="wbes", params={"country": "KEN", "year": 2013}, mode="quarantine")
    good = set(frame["idstd"].astype(str)) - {str(frame.loc[r, "idstd"]) for r in bad}
    assert good <= set(panel.enterprise["enterprise_id"])
    assert good <= set(reported(panel).index)
    assert len(panel.enterprise) >= 237


def pooled_frame() -> pd.DataFrame:
    """Standardized rounds of three countries and two years appended: country as the file writes it."""
    parts = []
    for k, (country, year) in enumerate(
        [("Kenya2013", 2013), ("Kenya2018", 2018), ("Côte d'Ivoire", 2016), ("Ghana 2013", 2013)]
    ):
        f = wbes_round(n=40, seed=10 + k, start_id=10_000 * (k + 1))
        parts.append(f.assign(country=country, year=year))
    return pd.concat(parts, ignore_index=True)


def test_pooled_multi_country_multi_year_file(tmp_path: Path) -> None:
    frame = pooled_frame()
    path = write_wbes_dta(tmp_path / "wbes_pooled.dta", frame)
    panel = ce.normalize(path, mapping="wbes")
    ent = panel.enterprise.set_index("enterprise_id")
    assert len(ent) == 160
    iso = ent.loc[frame["idstd"].astype(str), "country"].tolist()
    assert iso == ["KEN"] * 80 + ["CIV"] * 40 + ["GHA"] * 40
    assert ent["cluster_id"].str[:4].isin(["KEN-", "CIV-", "GHA-"]).all()
    rep = reported(panel)
    assert rep.loc[frame["idstd"].astype(str), "year"].astype(int).tolist() == frame["year"].tolist()
    assert sorted(rep["survey_round"].unique()) == ["2013", "2016", "2018"]
    # --set still wins over the file's variables
    one = ce.normalize(path, mapping="wbes", params={"country": "KEN"})
    assert set(one.enterprise["country"]) == {"KEN"}
    assert (
        one.audit["reason"]
        .str.contains(
            "country: 'KEN' for every row, as given \\(--set country\\); the file's column country was not read"
        )
        .any()
    )


def test_pooled_file_with_an_unknown_country_names_it(tmp_path: Path) -> None:
    frame = pooled_frame()
    frame.loc[frame["country"] == "Ghana 2013", "country"] = "Narnia2013"
    path = write_wbes_dta(tmp_path / "wbes_pooled.dta", frame)
    with pytest.raises(
        MappingError,
        match=r"column 'country' of wbes_pooled.dta has values the recode does not "
        r"list: 'Narnia2013' \(40 rows\)",
    ):
        ce.normalize(path, mapping="wbes")


def test_single_country_file_needs_country_and_year(tmp_path: Path) -> None:
    path = write_wbes_dta(tmp_path / "Kenya2013.dta", wbes_round(n=20))
    with pytest.raises(MappingError) as err:
        ce.normalize(path, mapping="wbes")
    message = str(err.value)
    assert "source column 'country' is not in Kenya2013.dta; or give it with --set country=VALUE" in message
    assert "columns found in Kenya2013.dta: idstd, a2, a4a" in message


def test_cli_by_name_and_unused_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_wbes_dta(tmp_path / "Kenya2013.dta", wbes_round(n=30))
    out = tmp_path / "panel"
    base = ["normalize", str(path), "-m", "wbes", "--set", "country=KEN", "--set", "year=2013", "--no-progress"]
    assert main([*base, "--out", str(out)]) == 0
    assert main(["validate", str(out)]) == 0
    capsys.readouterr()
    assert main([*base, "--set", "cuntry=KEN", "--out", str(tmp_path / "p2")]) == 2
    err = capsys.readouterr().err
    assert "parameter(s) cuntry given (--set) but not used by the mapping(s) wbes" in err
    assert "they take: country, isic_revision, year" in err
    assert main(["normalize", str(path), "-m", "wbes-typo", "--out", str(tmp_path / "p3")]) == 2
    assert "no mapping of that name ships with cluster_econ (shipped: wbes)" in capsys.readouterr().err


def test_wbes_design_weights_and_strata_reach_the_estimators(tmp_path: Path) -> None:
    """After `normalize -m wbes`, SurveyDesign.wbes() names the normalized weight and stratum columns:
    the design-based mean of sales equals the one computed from the raw file's wmedian and a4a."""
    from cluster_econ.estimate.survey import SurveyDesign

    frame = wbes_round()
    path = write_wbes_dta(tmp_path / "Kenya2013.dta", frame)
    panel = ce.normalize(path, mapping="wbes", params={"country": "KEN", "year": 2013})
    surveyed = panel.enterprise_year[~panel.enterprise_year["recall"].fillna(False).astype(bool)]
    got = ce.survey_mean(surveyed, "employment", SurveyDesign.wbes())
    raw = frame.assign(emp=frame["l1"].where(frame["l1"] >= 0))
    want = ce.survey_mean(raw, "emp", SurveyDesign(weights="wmedian", strata="a4a", lonely_psu="average"))
    assert got["estimate"].iloc[0] == pytest.approx(want["estimate"].iloc[0], rel=1e-12)
    assert got["std_error"].iloc[0] == pytest.approx(want["std_error"].iloc[0], rel=1e-12)
    strict = ce.survey_mean(surveyed, "employment", SurveyDesign.wbes("strict"))
    want_strict = ce.survey_mean(raw, "emp", SurveyDesign(weights="wstrict", strata="a4a", lonely_psu="average"))
    assert strict["estimate"].iloc[0] == pytest.approx(want_strict["estimate"].iloc[0], rel=1e-12)
    assert strict["estimate"].iloc[0] != pytest.approx(want["estimate"].iloc[0], rel=1e-9)
    with pytest.raises(EstimationError, match="recalled years"):
        ce.survey_mean(panel.enterprise_year, "employment", SurveyDesign.wbes())
