"""Batch reports (``cluster-econ report``): HTML content, cache, failures, config errors, paths.

Specifications here use the usual (iid) or cluster-robust CRV1 (Stata small-sample correction)
standard errors; the tests check the report machinery, not the estimators (tested elsewhere).
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cluster_econ.errors import ConfigError
from cluster_econ.report.batch import _inside, load_config, run_report
from cluster_econ.report.command import register

BASE = {
    "title": "Test report <script>alert(1)</script>",
    "data": "demo",
    "seed": 7,
    "specifications": [
        {"name": "innovation", "formula": "new_product ~ schooling_years + log(employment) | cluster_id + year",
         "estimator": "feols", "vcov": {"CRV1": "cluster_id"}},
        {"name": "size", "formula": "log(employment) ~ schooling_years", "estimator": "feols", "vcov": "HC1"},
    ],
    "subsets": [{"name": "<b>asia</b>", "where": {"country": ["JPN", "TWN", "CHN"]}}],
    "outputs": ["html", "latex", "docx", "xlsx"],
    "workers": 2,
}


def _write(tmp_path: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cluster-econ")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module", autouse=True)
def cache_secret_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The per-user cache secret of these tests lives in a temporary XDG_CACHE_HOME, not in ~."""
    home = tmp_path_factory.mktemp("xdg_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, cache_secret_home: Path) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("report")
    cfg = _write(tmp, BASE)
    out = tmp / "out"
    summary = run_report(cfg, out, progress=False)
    return out, summary


def test_report_html_content(report_dir: tuple[Path, object]) -> None:
    out, summary = report_dir
    assert summary.n_failed == 0 and summary.jobs == 4 and summary.computed == 4
    text = (out / "report.html").read_text(encoding="utf-8")
    # escaped text from the configuration; never raw markup
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    assert "<b>asia</b>" not in text and "&lt;b&gt;asia&lt;/b&gt;" in text
    # regression tables for both subsets, row audits, figures embedded, manifest
    assert text.count("Specifications: all") >= 1
    assert "Row audit: innovation (all)" in text
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(imgs) == 3  # the timeline of the first cluster and one figure per specification
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in imgs)
    manifest = __import__("json").loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["data_hash"] in text and manifest["seed"] == 7
    assert manifest["schema_version"] in text and "statsmodels" in text
    assert "SYNTHETIC DATA" in text
    assert "Phase profile of the data" in text
    # warnings raised inside the jobs (CRV1 on the demo's 12 clusters) are kept and shown, escaped
    few = [w for w in summary.warnings if w[:2] == ("all", "innovation")]
    assert len(few) == 1 and few[0][2].startswith("only 12 clusters in 'cluster_id'")
    assert not [w for w in summary.warnings if w[1] == "size"]  # HC1: nothing to warn about
    assert 'id="warnings"' in text and "only 12 clusters in &#x27;cluster_id&#x27;" in text
    assert "WARNING  all / innovation: only 12 clusters" in summary.text()
    for ext in ("tex", "docx", "xlsx"):
        assert (out / "tables" / f"all.{ext}").stat().st_size > 0
        assert (out / "tables" / f"b_asia_b.{ext}").stat().st_size > 0
        assert (out / "tables" / f"phase_profile.{ext}").stat().st_size > 0
    # everything is inside the output folder
    for f in summary.files:
        assert out.resolve() in Path(f).resolve().parents


def test_cache_recomputes_only_what_changed(tmp_path: Path, report_dir: tuple[Path, object]) -> None:
    out, _ = report_dir
    work = tmp_path / "out"
    shutil.copytree(out, work)
    cfg = _write(tmp_path, BASE)  # same configuration: the same report, from the cache
    again = run_report(cfg, work, progress=False)
    assert (again.cache_hits, again.computed) == (4, 0)
    # results from the cache give the same report, byte for byte
    assert (work / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert (work / "tables" / "all.xlsx").read_bytes() == (out / "tables" / "all.xlsx").read_bytes()
    changed = {**BASE, "phase_profile": False, "outputs": ["latex"], "specifications": [BASE["specifications"][0],
                                          {**BASE["specifications"][1], "formula": "log(employment) ~ 1"}]}
    third = run_report(_write(tmp_path, changed), work, progress=False)
    # the changed specification reruns on both subsets; the unchanged one comes from the cache
    assert (third.cache_hits, third.computed) == (2, 2)
    # the specifications' estimators draw no random numbers: another seed reuses all of them
    other_seed = run_report(_write(tmp_path, {**changed, "seed": 8}), work, progress=False, workers=1)
    assert (other_seed.cache_hits, other_seed.computed) == (4, 0)


SMALL = {"data": "demo", "phase_profile": False, "outputs": ["latex"],
         "specifications": [BASE["specifications"][1]]}


class _Plant:
    """Unpickling this creates ``path``: what a planted pickle could do (here harmlessly)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_planted_or_tampered_cache_files_are_not_loaded(tmp_path: Path, cache_secret_home: Path) -> None:
    import json
    import pickle

    cfg = _write(tmp_path, SMALL)
    out = tmp_path / "out"
    first = run_report(cfg, out, progress=False, workers=1)
    assert (first.computed, first.cache_hits, first.cache_rejected) == (1, 0, 0)
    key_file = cache_secret_home / "cluster_econ" / "cache.key"
    assert key_file.stat().st_size == 32 and key_file.stat().st_mode & 0o777 == 0o600
    (cached,) = (out / ".cache").glob("*.json")
    assert out.resolve() not in key_file.resolve().parents  # the secret is outside the output folder
    good = cached.read_bytes()
    tex = (out / "tables" / "all.tex").read_bytes()

    # 1. a planted pickle, under the old name and under the cache name: never unpickled
    pickle.loads(pickle.dumps(_Plant(tmp_path / "probe")))
    assert (tmp_path / "probe").exists()  # the plant is real: unpickling it runs code
    marker = tmp_path / "code_ran"
    blob = pickle.dumps(_Plant(marker))
    cached.with_suffix(".pkl").write_bytes(blob)
    cached.write_bytes(blob)
    second = run_report(cfg, out, progress=False, workers=1)
    assert not marker.exists()
    assert (second.computed, second.cache_hits, second.cache_rejected) == (1, 0, 1)
    assert "1 cache file(s) rejected" in second.text()
    assert cached.read_bytes() == good and (out / "tables" / "all.tex").read_bytes() == tex

    # 2. a real cache file with a changed coefficient (the MAC no longer verifies): recomputed
    mac, payload = good.split(b"\n", 1)
    state = json.loads(payload)
    state["result"]["params"]["values"][1] += 1.0
    cached.write_bytes(mac + b"\n" + json.dumps(state, sort_keys=True, separators=(",", ":")).encode())
    third = run_report(cfg, out, progress=False, workers=1)
    assert (third.computed, third.cache_rejected) == (1, 1)
    assert (out / "tables" / "all.tex").read_bytes() == tex

    # 3. an intact file from another user's key (same content, other secret): rejected too
    import hashlib
    import hmac

    other = hmac.new(b"x" * 32, cached.stem.encode() + b"\n" + payload, hashlib.sha256).hexdigest().encode()
    cached.write_bytes(other + b"\n" + payload)
    assert run_report(cfg, out, progress=False, workers=1).cache_rejected == 1
    # and the untouched file is a hit
    fourth = run_report(cfg, out, progress=False, workers=1)
    assert (fourth.computed, fourth.cache_hits, fourth.cache_rejected) == (0, 1, 0)


def test_cache_not_used_when_its_key_is_readable_by_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    key = tmp_path / "xdg" / "cluster_econ" / "cache.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"k" * 32)
    key.chmod(0o644)
    summary = run_report(_write(tmp_path, SMALL), tmp_path / "out", progress=False, workers=1)
    assert summary.cache_note.startswith("cache not used") and "0600" in summary.cache_note
    assert summary.computed == 1 and not list((tmp_path / "out" / ".cache").iterdir())


def test_state_encoding_round_trips_exactly() -> None:
    import numpy as np
    import pandas as pd

    from cluster_econ import estimate
    from cluster_econ.report.cache import decode_state as _decode_state
    from cluster_econ.report.cache import encode_state as _encode_state
    from cluster_econ.report.cache import rebuild_result as _rebuild
    from cluster_econ.report.cache import result_state as _result_state

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40), "g": np.repeat(np.arange(8), 5)})
    res = estimate.feols("y ~ x", df, vcov={"CRV1": "g"})
    tidy = pd.DataFrame({"phase": ["a", None], "estimate": [0.1, np.nan], "n": [3, 4], "flag": [True, False],
                         "mixed": ["x", 1.5]})
    back = _decode_state(_encode_state({"result": _result_state(res), "tidy": tidy, "warnings": ["w"],
                                        "error": None, "seconds": 1.0}))
    again = _rebuild(back["result"])
    pd.testing.assert_series_equal(again.params, res.params, check_exact=True, check_names=False)
    pd.testing.assert_frame_equal(again.cov, res.cov, check_exact=True, check_names=False)
    assert again.vcov_info.describe() == res.vcov_info.describe() and again.nobs == res.nobs
    assert again.audit == res.audit and again.vcov_info.details == dict(res.vcov_info.details)
    pd.testing.assert_frame_equal(back["tidy"], tidy, check_exact=True)
    assert back["warnings"] == ["w"] and "seconds" not in back


def test_seed_reaches_the_propositions_and_only_their_cache_keys(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    import cluster_econ.hypotheses as hyp
    from cluster_econ.report.batch import _job_key

    spec = {"name": "s", "formula": "y ~ x", "estimator": "feols"}
    assert _job_key("h", "spec", spec, "column", 1) == _job_key("h", "spec", spec, "column", 2)
    assert _job_key("h", "proposition", {"id": "P9"}, "column", 1) != _job_key("h", "proposition", {"id": "P9"},
                                                                                  "column", 2)
    calls: list[dict] = []

    class Fake:
        verdict = "supported"

        def row(self) -> dict:
            return {"id": "P9", "verdict": "supported"}

        def tidy(self) -> pd.DataFrame:
            return pd.DataFrame({"term": ["treated"], "estimate": [0.1]})

    def fake_test(panel: object, prop: str, **kw: object) -> Fake:
        calls.append({"prop": prop, **kw})
        return Fake()

    monkeypatch.setattr(hyp, "prepare", lambda panel, **kw: "prepared")
    monkeypatch.setattr(hyp, "test", fake_test)
    cfg = {"data": "demo", "propositions": ["P9"], "phase_profile": False, "outputs": ["latex"]}
    run_report(_write(tmp_path, {**cfg, "seed": 11}), tmp_path / "out", progress=False, workers=1)
    assert calls[-1]["prop"] == "P9" and calls[-1]["options"] == {"seed": 11}
    again = run_report(_write(tmp_path, {**cfg, "seed": 12}), tmp_path / "out", progress=False, workers=1)
    assert again.computed == 1 and calls[-1]["options"] == {"seed": 12}
    # no seed in the configuration: the proposition keeps its registered default
    run_report(_write(tmp_path, cfg), tmp_path / "out", progress=False, workers=1)
    assert "options" not in calls[-1]


def test_failing_specification_is_reported_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {**BASE, "subsets": [], "phase_profile": False, "specifications": [
        BASE["specifications"][1],
        {"name": "broken", "formula": "new_product ~ no_such_column", "estimator": "logit"}]}
    code = _cli(["report", str(_write(tmp_path, cfg)), "--out", str(tmp_path / "out"), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "FAILED  all / broken" in printed and "no_such_column" in printed
    text = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert 'class="failed"' in text and "no_such_column" in text
    assert "Specifications: all" in text  # the working specification still ran


def test_config_errors_name_key_and_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False)
    lines = text.splitlines()
    idx = next(i for i, line in enumerate(lines) if "estimator: feols" in line)
    lines[idx] = lines[idx].replace("feols", "magic")
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "specifications.0.estimator" in str(err.value) and f"line {idx + 1}" in str(err.value)
    # a formula outside the grammar is rejected before anything runs, never evaluated
    cfg = {**BASE, "specifications": [{"name": "x", "formula": "y ~ __import__('os').system('true')",
                                       "estimator": "feols"}]}
    with pytest.raises(ConfigError, match=r"specifications\.0\.formula.*line"):
        load_config(_write(tmp_path, cfg, "bad2.yaml"))
    with pytest.raises(ConfigError, match=r"key 'data'"):
        load_config(_write(tmp_path, {**BASE, "data": "no/such/folder"}, "bad3.yaml"))


def test_config_error_through_the_command(tmp_path: Path) -> None:
    # cluster_econ.cli.main prints ClusterEconError subclasses and exits 2
    path = _write(tmp_path, {**BASE, "workers": 0})
    with pytest.raises(ConfigError, match=r"key 'workers'.*line \d+"):
        _cli(["report", str(path), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o" / "report.html").exists()


def test_output_paths_cannot_escape(tmp_path: Path) -> None:
    # labels that look like paths become file names of letters, digits and _ . - inside the folder
    cfg = {"data": "demo", "phase_profile": False, "outputs": ["html", "latex"],
           "specifications": [{**BASE["specifications"][1], "name": "../../escaped"}],
           "subsets": [{"name": "/tmp/../../outside", "where": {"country": ["JPN"]}}]}
    out = tmp_path / "run" / "out"
    summary = run_report(_write(tmp_path, cfg), out, progress=False, workers=1)
    assert summary.n_failed == 0
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in written if out not in p.parents] == [tmp_path / "config.yaml"]
    names = {p.relative_to(out).as_posix() for p in written if out in p.parents and ".cache" not in p.parts}
    assert names == {"report.html", "manifest.json", "tables/all.tex", "tables/tmp_.._.._outside.tex",
                     "figures/spec_escaped.png", f"figures/timeline_{_first_cluster()}.png"}
    for f in summary.files:
        assert out.resolve() in Path(f).resolve().parents
    # and every write is guarded: a path that leaves the folder is refused
    with pytest.raises(ConfigError, match=r"escapes the output folder"):
        _inside(out, "tables", "../../x.tex")


def _first_cluster() -> str:
    from cluster_econ.datasets import demo

    return sorted(demo().cluster_year["cluster_id"].astype(str).unique())[0]


def test_output_name_clashes_are_config_errors(tmp_path: Path) -> None:
    two = {**BASE, "specifications": [{**BASE["specifications"][1], "name": "a/b"},
                                      {**BASE["specifications"][1], "name": "a_b"}]}
    path = _write(tmp_path, two, "clash.yaml")
    lines = path.read_text(encoding="utf-8").splitlines()
    first, second = (next(i + 1 for i, line in enumerate(lines) if f"name: {n}" in line) for n in ("a/b", "a_b"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"key 'specifications.1.name' (line {second})" in msg
    assert f"key 'specifications.0.name', line {first}" in msg
    assert "'a_b'" in msg and "rename one" in msg
    # names differing only in case clash too (macOS and Windows file systems); 'all' is the full data
    with pytest.raises(ConfigError, match=r"subsets\.0\.name.*'ALL'.*full data.*reserved name"):
        load_config(_write(tmp_path, {**BASE, "subsets": [{"name": "ALL", "where": {"country": ["JPN"]}}]}, "c2.yaml"))
    # a subset split 'by' a column gets its names from the data: checked once the data are loaded
    by = {**BASE, "subsets": [{"name": "country_JPN", "where": {"country": ["JPN"]}}, {"by": "country"}]}
    with pytest.raises(ConfigError, match=r"subsets\.1\.by.*'country=JPN'.*subsets\.0\.name', line \d+\)"):
        run_report(_write(tmp_path, by, "c3.yaml"), tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_report_renders_in_headless_chromium(report_dir: tuple[Path, object]) -> None:
    out, _ = report_dir
    proc = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           (out / "report.html").resolve().as_uri()],
                          capture_output=True, text=True, timeout=90, check=False)
    dom = proc.stdout
    assert "</html>" in dom, proc.stderr[-2000:]
    source = (out / "report.html").read_text(encoding="utf-8")
    # every table and figure of the file is in the rendered DOM
    assert dom.count("<table") == source.count("<table") >= 6
    assert dom.count("<img") == source.count("<img") == 3
    assert dom.count("<figure") == 3
    assert "Specifications: all" in dom and "Manifest" in dom
    assert "<script" not in dom.lower()


def test_example_configuration_is_valid() -> None:
    from cluster_econ.report.replicate import replication_root

    cfg, _ = load_config(replication_root() / "report_demo.yaml")
    assert cfg["data"] == "demo" and cfg["specifications"] and cfg["propositions"]
