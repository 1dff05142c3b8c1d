"""Replications (``cluster-econ replicate``) and the phase profile table.

Standard errors in the regression exhibits: usual (iid) OLS formulas on the transformed data, as
printed by Wooldridge and Baltagi; the phase profile's standard errors are clustered on the unit
named in :mod:`cluster_econ.tables.phase_profile`.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster_econ.errors import SchemaError
from cluster_econ.panel import Panel
from cluster_econ.report.command import register
from cluster_econ.report.replicate import available, replication_root, run
from cluster_econ.tables.phase_profile import phase_profile, phase_profile_long, phase_profile_table

REQUIRED = {"simcheck_phase_profile", "simcheck_propositions", "wooldridge_jtrain", "baltagi_grunfeld"}


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cluster-econ")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("replication_output")
    return out, run(out=out)


def test_every_replication_folder_is_complete() -> None:
    names = set(available())
    assert names >= REQUIRED
    for name in names:
        folder = replication_root() / name
        for f in ("config.yaml", "expected.yaml", "README.md"):
            assert (folder / f).is_file(), f"{name}/{f} missing"
        readme = (folder / "README.md").read_text(encoding="utf-8")
        for heading in ("Data availability", "Computational requirements", "List of exhibits", "cite"):
            assert heading in readme, f"{name}/README.md lacks {heading!r}"


def test_every_exhibit_passes(outcomes: tuple[Path, list]) -> None:
    out, results = outcomes
    by_name = {o.name: o for o in results}
    assert set(by_name) == set(available())
    for name, o in by_name.items():
        assert not o.skipped, f"{name}: {o.skipped}"  # every shipped replication runs; none may skip
        assert o.error is None, f"{name}: {o.error}"
        assert o.checks, name
        failed = [c.line() for c in o.checks if not c.passed]
        assert not failed, "\n".join(failed)
        assert (out / name / "checks.csv").is_file()
    # tables in every format and figures in both formats were written
    for ext in ("tex", "html", "md", "csv", "xlsx", "docx"):
        assert (out / "wooldridge_jtrain" / "tables" / f"jtrain_models.{ext}").stat().st_size > 0
        assert (out / "simcheck_phase_profile" / "tables" / f"phase_profile.{ext}").stat().st_size > 0
    for ext in ("png", "svg"):
        assert (out / "baltagi_grunfeld" / "figures" / f"grunfeld_value.{ext}").stat().st_size > 0
    assert (out / "summary.csv").is_file()


def test_printed_checks_use_half_a_unit_of_the_last_digit(outcomes: tuple[Path, list]) -> None:
    _, results = outcomes
    jt = next(o for o in results if o.name == "wooldridge_jtrain")
    fe_grant = next(c for c in jt.checks if c.quantity == "fe.grant.coef")
    assert fe_grant.expected == "-.252" and float(fe_grant.tolerance) == pytest.approx(0.0005)
    assert abs(fe_grant.value - (-0.252)) <= 0.0005
    gr = next(o for o in results if o.name == "baltagi_grunfeld")
    cap = next(c for c in gr.checks if c.quantity == "between.capital.coef")
    assert cap.expected == ".0320" and float(cap.tolerance) == pytest.approx(0.00005)


def _copy(tmp_path: Path, name: str) -> Path:
    root = tmp_path / "replication"
    shutil.copytree(replication_root() / name, root / name)
    return root


def test_tampered_expected_value_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path, "wooldridge_jtrain")
    exp = root / "wooldridge_jtrain" / "expected.yaml"
    text = exp.read_text(encoding="utf-8")
    assert 'printed: "-.252"' in text
    exp.write_text(text.replace('printed: "-.252"', 'printed: "-.262"'), encoding="utf-8")
    code = _cli(["replicate", "wooldridge_jtrain", "--from", str(root), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 1
    assert "FAIL  wooldridge_jtrain: FE grant: fe.grant.coef" in printed
    assert "1 failed" in printed.splitlines()[-1]


def test_untampered_copy_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path, "baltagi_grunfeld")
    code = _cli(["replicate", "--from", str(root), "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("== Replications of published results")
    assert lines[1] == "   baltagi_grunfeld: source: Baltagi, Econometric Analysis of Panel Data, Table 2.1"
    assert all(line.startswith("PASS") for line in lines[2:-1])
    assert lines[-1].startswith("1 exhibits (1 replications, 0 simulation checks), 30 checks: 30 passed, 0 failed")


def test_csv_outputs_neutralise_spreadsheet_formulas(tmp_path: Path) -> None:
    # checks.csv and summary.csv go through io.atomic.atomic_write_csv: text a spreadsheet would run
    # as a formula gets a leading quote; plain numbers stay numbers
    root = _copy(tmp_path, "baltagi_grunfeld")
    exp = root / "baltagi_grunfeld" / "expected.yaml"
    text = exp.read_text(encoding="utf-8")
    first = "{name: OLS Intercept, value: pooled.Intercept.coef,"
    assert first in text
    exp.write_text(text.replace(first, '{name: "=HYPERLINK(\'http://x\')", value: pooled.Intercept.coef,', 1)
                   .replace('source: "Baltagi', 'source: "@SUM(A1) Baltagi', 1), encoding="utf-8")
    (o,) = run(["baltagi_grunfeld"], out=tmp_path / "out", root=root)
    assert o.passed
    checks = pd.read_csv(tmp_path / "out" / "baltagi_grunfeld" / "checks.csv", dtype=str, keep_default_na=False)
    assert checks.loc[0, "check"] == "'=HYPERLINK('http://x')"
    assert checks.loc[0, "source"].startswith("'@SUM(A1)")
    assert not checks["check"].str.startswith(("=", "+", "@")).any()
    assert checks.loc[0, "value"] == f"{o.checks[0].value:.6g}"  # a plain negative number: unchanged
    assert not list((tmp_path / "out").rglob("*.tmp"))  # written atomically, no temporary left behind


def test_two_runs_write_identical_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # no wall-clock time in any written file (times go to stdout): every table, figure, checks.csv
    # and summary.csv is byte-identical across runs
    for out in ("a", "b"):
        assert _cli(["replicate", "baltagi_grunfeld", "--out", str(tmp_path / out)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "times: baltagi_grunfeld " in last and last.endswith(" s")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {f.suffix for f in files} >= {".tex", ".html", ".md", ".csv", ".xlsx", ".docx", ".png", ".svg"}
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert "seconds" not in (tmp_path / "a" / "summary.csv").read_text(encoding="utf-8")


def test_invalid_expected_file_names_key_and_line(tmp_path: Path) -> None:
    root = _copy(tmp_path, "baltagi_grunfeld")
    exp = root / "baltagi_grunfeld" / "expected.yaml"
    lines = exp.read_text(encoding="utf-8").splitlines()
    idx = next(i for i, line in enumerate(lines) if line.startswith("  - {"))
    lines[idx] = lines[idx].replace("printed:", "printd:")
    exp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (o,) = run(["baltagi_grunfeld"], out=tmp_path / "out", root=root)
    assert not o.passed
    assert "checks.0" in o.error and f"line {idx + 1}" in o.error and "printd" in o.error


def test_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["replicate", "no_such_thing", "--out", "unused"]) == 2
    assert "unknown replication" in capsys.readouterr().err


# -- phase profile -----------------------------------------------------------------------------
def _tiny_panel() -> Panel:
    """Two clusters with hand-checkable entrants, schooling and exits."""
    ent = pd.DataFrame({
        "enterprise_id": ["a1", "a2", "a3", "a4", "b1", "b2", "b3"],
        "cluster_id": ["A", "A", "A", "A", "B", "B", "B"],
        "year_established": pd.array([2000, 2001, 2002, 2002, 2000, 2002, 2002], dtype="Int64"),
        "founder_origin": ["merchant", "spinoff", "spinoff", "other", "engineer", "spinoff", "unknown"],
        "spinoff_parent_id": [None, "a1", "a1", None, None, "b1", None],
    })
    rows = []
    for eid, est in zip(ent["enterprise_id"], ent["year_established"], strict=True):
        for y in range(int(est), 2004):
            rows.append({"enterprise_id": eid, "year": y, "employment": 10.0, "new_product": y == 2003})
    ey = pd.DataFrame(rows)
    ey["year"] = ey["year"].astype("Int64")
    ey["new_product"] = ey["new_product"].astype("boolean")
    cy = pd.DataFrame({"cluster_id": ["A"] * 4 + ["B"] * 4, "year": list(range(2000, 2004)) * 2,
                       "phase": ["initiation", "quantity_expansion", "quantity_expansion", "quality_improvement"] * 2})
    man = pd.DataFrame({"enterprise_id": list(ent["enterprise_id"]),
                        "manager_id": ["1"] * 7, "generation": pd.array([1] * 7, dtype="Int64"),
                        "schooling_years": [6.0, 8.0, 10.0, 12.0, 14.0, 9.0, 11.0]})
    return Panel({"enterprise": ent, "enterprise_year": ey, "cluster_year": cy, "manager": man})


def test_phase_profile_by_hand() -> None:
    long = phase_profile_long(_tiny_panel()).set_index(["section", "item", "phase"])
    # entrants: initiation a1, b1 (2000); quantity expansion a2 (2001), a3, a4, b2, b3 (2002)
    assert long.loc[("sample", "n_entrants", "initiation"), "estimate"] == 2
    assert long.loc[("sample", "n_entrants", "quantity_expansion"), "estimate"] == 5
    # origins among known ones in quantity expansion: spinoff a2, a3, b2; other a4 (b3 unknown)
    assert long.loc[("founders", "spinoff", "quantity_expansion"), "estimate"] == pytest.approx(3 / 4)
    assert long.loc[("founders", "origin_unknown", "quantity_expansion"), "estimate"] == pytest.approx(1 / 5)
    assert long.loc[("innovation", "spinoff_share", "quantity_expansion"), "estimate"] == pytest.approx(3 / 5)
    # schooling of enterprise-years in initiation: a1 (6) and b1 (14) in 2000
    assert long.loc[("schooling", "schooling_mean", "initiation"), "estimate"] == pytest.approx(10.0)
    assert long.loc[("schooling", "schooling_mean", "initiation"), "sd_clusters"] == pytest.approx(np.std([6, 14],
                                                                                                           ddof=1))
    # quality improvement (2003): all 7 firms, 2 clusters
    assert long.loc[("innovation", "new_product", "quality_improvement"), "estimate"] == 1.0
    assert long.loc[("innovation", "new_product", "quantity_expansion"), "estimate"] == 0.0
    assert long.loc[("sample", "n_enterprise_years", "quality_improvement"), "estimate"] == 7
    # binomial standard error with independent entrants: sqrt(p(1-p)/n) * sqrt(n/(n-1))
    se = long.loc[("founders", "spinoff", "quantity_expansion"), "se"]
    assert se == pytest.approx(np.sqrt(0.75 * 0.25 / 4) * np.sqrt(4 / 3))


def test_phase_profile_shape_and_rendering() -> None:
    panel = _tiny_panel()
    prof = phase_profile(panel)
    assert list(prof.columns.get_level_values(0).unique()) == ["initiation", "quantity_expansion",
                                                               "quality_improvement"]
    assert set(prof.columns.get_level_values(1)) == {"estimate", "sd_clusters"}
    assert prof.loc[("sample", "n_clusters"), ("initiation", "estimate")] == 2
    tab = phase_profile_table(profile=prof)
    md = tab.to_markdown()
    assert "Quantity expansion" in md and "Spin-off share of entrants" in md
    assert "<table" in tab.to_html()


def test_phase_profile_phases_argument_and_errors() -> None:
    panel = _tiny_panel()
    cy = panel.cluster_year
    custom = cy.assign(phase="quantity_expansion")
    long = phase_profile_long(panel, phases=custom)
    assert set(long["phase"]) == {"quantity_expansion"}
    with pytest.raises(SchemaError, match="outside"):
        phase_profile_long(panel, phases=cy.assign(phase="boom"))
    with pytest.raises(SchemaError, match="PhaseResult or a DataFrame"):
        phase_profile_long(panel, phases=cy[["cluster_id", "year"]])


def test_phase_profile_detects_phases_when_the_data_have_none() -> None:
    from cluster_econ.datasets import demo
    from cluster_econ.phases import detect

    panel = demo()
    bare = panel.replace(cluster_year=panel.cluster_year.drop(columns=["phase"]))
    auto = phase_profile_long(bare)
    explicit = phase_profile_long(bare, phases=detect(bare, method="rules"))
    pd.testing.assert_frame_equal(auto, explicit)
    true_phases = phase_profile_long(panel)
    n = lambda df: df.set_index(["section", "item", "phase"]).loc[("sample", "n_cluster_years"), "estimate"]  # noqa: E731
    assert n(auto).sum() == n(true_phases).sum() == len(panel.cluster_year)


def test_missing_hypotheses_module_is_a_failure_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    # the package ships cluster_econ.hypotheses: losing it is a regression, reported as a failure
    monkeypatch.setitem(sys.modules, "cluster_econ.hypotheses", None)  # import raises ImportError
    (o,) = run(["simcheck_propositions"], out=tmp_path)
    assert o.skipped is None and not o.passed and o.n_failed == 1
    assert "cluster_econ.hypotheses" in o.error


def test_replications_and_simulation_checks_are_named_for_what_they_are() -> None:
    """A replication names its published source and compares with printed digits, never with the
    simulator; a simulation check (the synthetic demo against the simulator's settings) says so."""
    from cluster_econ.report.replicate import describe
    from cluster_econ.schema.yamlconf import YamlDocument

    kinds = {name: describe(name) for name in available()}
    assert {n for n, (k, _) in kinds.items() if k == "replication"} >= {"wooldridge_jtrain", "baltagi_grunfeld"}
    for name, (kind, source) in kinds.items():
        checks = YamlDocument.from_file(replication_root() / name / "expected.yaml").data["checks"]
        if kind == "replication":
            assert source and any("printed" in c for c in checks), name
            assert not any("truth" in c for c in checks), name
        else:
            assert kind == "simulation_check" and name.startswith("simcheck_"), name
            assert not any("printed" in c for c in checks), name
            readme = (replication_root() / name / "README.md").read_text(encoding="utf-8")
            assert "not a replication of published numbers" in readme, name


@pytest.mark.parametrize(("edit", "message"), [
    # a truth check smuggled into a replication
    (lambda cfg, exp: (cfg, exp.replace('printed: "-.252"', 'truth: x.y, tolerance: 0.1', 1)),
     "not with the simulator's truth"),
    # a replication that prints nothing published
    (lambda cfg, exp: (cfg, re.sub(r'printed: "([-.0-9]+)"',
                                   lambda m: f"expected: {float(m[1])!r}, tolerance: 0.001", exp)),
     "at least one number"),
    # no kind at all
    (lambda cfg, exp: (cfg.replace("kind: replication\n", ""), exp), "kind"),
    # a replication without its source
    (lambda cfg, exp: ("\n".join(x for x in cfg.splitlines() if not x.startswith("source:")) + "\n", exp),
     "source"),
])
def test_a_mislabelled_exhibit_is_a_configuration_error(tmp_path: Path, edit, message: str) -> None:
    root = _copy(tmp_path, "wooldridge_jtrain")
    folder = root / "wooldridge_jtrain"
    cfg, exp = edit((folder / "config.yaml").read_text(encoding="utf-8"),
                    (folder / "expected.yaml").read_text(encoding="utf-8"))
    (folder / "config.yaml").write_text(cfg, encoding="utf-8")
    (folder / "expected.yaml").write_text(exp, encoding="utf-8")
    (o,) = run(["wooldridge_jtrain"], out=tmp_path / "out", root=root)
    assert not o.passed and o.error is not None and message in o.error, o.error
