"""The panel folder and its manifest (issue 10, items 6 and 8): ``cluster-econ validate`` checks every
promise of the manifest and documents its exit codes (0 valid, 1 a check failed, 2 not a panel
folder); a stale ``rejects/`` never survives a later run; a second writer fails at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cluster_econ as ce
from cluster_econ.cli import main

ROOT = Path(__file__).resolve().parents[1]


def normalize_cli(data: Path, spec: Path, out: Path, *extra: str) -> int:
    return main(["normalize", str(data), "-m", str(spec), "-o", str(out), "--no-progress", *extra])


def edit_manifest(out: Path, change) -> None:
    m = json.loads((out / "manifest.json").read_text())
    change(m)
    (out / "manifest.json").write_text(json.dumps(m))


def test_validate_exit_codes(tmp_path: Path, cluster_csv: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    data, spec = cluster_csv
    out = tmp_path / "panel"
    assert normalize_cli(data, spec, out) == 0
    pristine = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def restore() -> None:
        for p, b in pristine.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b)

    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    assert "validation passed" in capsys.readouterr().out
    # an edited row count in the manifest (the file is untouched)
    edit_manifest(out, lambda m: m["files"]["enterprise_year.parquet"].update(rows=6))
    assert main(["validate", str(out)]) == 1
    assert "enterprise_year.parquet: rows: the manifest says 6, the file has 5" in capsys.readouterr().out
    restore()
    edit_manifest(out, lambda m: m["tables"]["enterprise"].update(rows=4))
    assert main(["validate", str(out)]) == 1
    assert "tables.enterprise: rows: the manifest says 4, its files have 3" in capsys.readouterr().out
    restore()
    # a changed file: a failed check (1), no longer an input error (2)
    target = out / "enterprise_year.parquet"
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    assert main(["validate", str(out)]) == 1
    assert "enterprise_year.parquet: sha256: contents changed since the manifest was written" in capsys.readouterr().out
    restore()
    (out / "audit.parquet").unlink()
    assert main(["validate", str(out)]) == 1
    assert "audit.parquet: listed in the manifest but missing" in capsys.readouterr().out
    restore()
    (out / "manifest.json").write_text("{not json")
    assert main(["validate", str(out)]) == 1
    assert "manifest.json: not valid JSON" in capsys.readouterr().out
    restore()
    assert main(["validate", str(out)]) == 0
    # not a panel folder at all: 2
    assert main(["validate", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "plain").mkdir()
    assert main(["validate", str(tmp_path / "plain")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert main(["validate", str(data)]) == 2


def test_stale_rejects_do_not_survive_a_later_run(
    tmp_path: Path, cluster_csv: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    data, spec = cluster_csv
    good = data.read_text()
    data.write_text(good.replace("2,2004,sandals,80,", "2,20x4,sandals,80,"))  # a bad key: the row is rejected
    out = tmp_path / "panel"
    assert normalize_cli(data, spec, out, "--quarantine") == 0
    assert (out / "rejects" / "enterprise_year.parquet").exists()
    stale = (out / "rejects" / "enterprise_year.parquet").read_bytes()
    data.write_text(good)
    assert normalize_cli(data, spec, out, "--quarantine") == 0
    assert not (out / "rejects").exists()  # the new panel has no rejects: none are left over
    assert ce.read_panel(out).rejects == {}
    # a rejects file put back by hand is not part of the panel: validate says so
    (out / "rejects").mkdir()
    (out / "rejects" / "enterprise_year.parquet").write_bytes(stale)
    capsys.readouterr()
    assert main(["validate", str(out)]) == 1
    assert "rejects/enterprise_year.parquet: data file not listed in the manifest" in capsys.readouterr().out


def test_second_writer_fails_fast(tmp_path: Path, cluster_csv: tuple[Path, Path],
                                  capsys: pytest.CaptureFixture) -> None:
    data, spec = cluster_csv
    out = tmp_path / "panel"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom cluster_econ.io.atomic import writer_lock\n"
         "with writer_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n", str(out)],
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        assert normalize_cli(data, spec, out) == 2
        assert time.monotonic() - t0 < 5  # before any work is done
        err = capsys.readouterr().err
        assert f"process {holder.pid} is writing this folder right now" in err
    finally:
        holder.kill()
        holder.wait()
    assert normalize_cli(data, spec, out) == 0  # the lock went with the process


def test_out_pointing_at_a_file(tmp_path: Path, cluster_csv: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    data, spec = cluster_csv
    assert normalize_cli(data, spec, data) == 2
    assert "is a file; give the folder the panel is written to" in capsys.readouterr().err
