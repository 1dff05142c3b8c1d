"""Crash-safe and concurrent-safe panel folders (issue 10, item 6).

Each test runs a real writer in a child process and kills it (SIGKILL, as ``kill -9``) or interrupts
it (SIGINT, as Ctrl-C) in the middle of writing: the previous panel must still be there byte for
byte and readable, and the next writer must remove what the killed one left. The child is paused at
a chosen point by wrapping the writer's per-file step in the child only (the package is unchanged).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crash_panels import new_panel, old_panel

import cluster_econ as ce
from cluster_econ.errors import InputError, OutputBusyError
from cluster_econ.io.atomic import clean_interrupted, writer_lock

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")

CHILD = """
import sys, time, os
import numpy as np, pandas as pd
import cluster_econ as ce
from cluster_econ.io import atomic, parquet

out, pause_at, marker, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if mode == "no-exchange":
    atomic._exchange = lambda a, b: False
    real_rename = os.rename
    def rename(a, b):
        real_rename(a, b)
        if ".old-" in str(b):  # the old folder is aside, the new one not yet in place
            open(marker, "w").write(str(b))
            time.sleep(60)
    os.rename = rename
else:
    real_file = parquet.PanelFolderWriter._file
    written = []
    def slow_file(self, rel, df, info):
        real_file(self, rel, df, info)
        written.append(rel)
        if len(written) == pause_at:
            open(marker, "w").write(rel)
            time.sleep(60)
    parquet.PanelFolderWriter._file = slow_file
from crash_panels import new_panel, old_panel
print("writing", flush=True)
if mode == "loop":  # write the new panel and the old one in turn until killed
    while True:
        new_panel().to_parquet(out, partition_by=["country", "survey_round"])
        old_panel().to_parquet(out)
new_panel().to_parquet(out, partition_by=["country", "survey_round"])
print("done", flush=True)
"""




def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")
                  and not p.name.endswith(".lock"))


def start_child(out: Path, pause_at: int, marker: Path, mode: str = "pause") -> subprocess.Popen:
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(pause_at), str(marker), mode],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("child never reached the pause point")
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_writer_leaves_previous_panel_intact(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "panel"
    old_panel().to_parquet(out)
    before = snapshot(out)
    marker = tmp_path / "paused"
    proc = start_child(out, pause_at=12, marker=marker)  # 12 of the 45 files written
    wait_for(marker, proc)
    # a second writer of the same folder fails at once, naming the process that writes it
    t0 = time.monotonic()
    with pytest.raises(OutputBusyError, match=rf"process {proc.pid} is writing this folder"):
        old_panel().to_parquet(out)
    assert time.monotonic() - t0 < 5
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert snapshot(out) == before  # byte-identical
    pd.testing.assert_frame_equal(ce.read_panel(out).enterprise_year, ce.validate(old_panel()).panel.enterprise_year,
                                  check_dtype=False)
    if sig == signal.SIGINT:
        assert leftovers(out) == []  # Ctrl-C: the writer removed its own staging folder
    else:
        assert [n.split("-")[0] for n in leftovers(out)] == [".panel.staging"]
    # the next writer removes what the killed one left, then writes
    old_panel().to_parquet(out)
    assert leftovers(out) == [] and snapshot(out) == before


def test_kill_at_random_moments_leaves_a_complete_panel(tmp_path: Path) -> None:
    """A child writes two panels in turn into one folder until it is killed at a random moment: the
    folder is then byte for byte one of the two complete panels, never a mix or a half."""
    small, big = tmp_path / "small", tmp_path / "big"
    old_panel().to_parquet(small)
    new_panel().to_parquet(big, partition_by=["country", "survey_round"])
    snapshots = [snapshot(small), snapshot(big)]
    out = tmp_path / "panel"
    old_panel().to_parquet(out)
    for delay in np.random.default_rng(7).uniform(0.2, 0.8, 2):
        proc = start_child(out, pause_at=-1, marker=tmp_path / "never", mode="loop")
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=30)
        assert out.exists() and snapshot(out) in snapshots
        assert ce.validate(str(out), mode="report").ok


def test_kill_between_the_two_renames_of_the_fallback_switch(tmp_path: Path) -> None:
    """Where folders cannot be exchanged in one step, the old folder is set aside first; a writer
    killed just then leaves it aside, and the next reader or writer puts it back."""
    out = tmp_path / "panel"
    old_panel().to_parquet(out)
    before = snapshot(out)
    marker = tmp_path / "aside"
    proc = start_child(out, pause_at=-1, marker=marker, mode="no-exchange")
    wait_for(marker, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists()
    aside = Path(marker.read_text())
    assert snapshot(aside) == before  # the previous panel, intact
    back = ce.read_panel(out)  # the reader puts it back
    assert snapshot(out) == before and len(back.enterprise_year) == 3
    assert leftovers(out) == [] or all(".staging-" in n for n in leftovers(out))
    old_panel().to_parquet(out)
    assert leftovers(out) == []


def test_lock_is_reentrant_and_released(tmp_path: Path) -> None:
    out = tmp_path / "panel"
    with writer_lock(out):
        old_panel().to_parquet(out)  # the same process may write while it holds the lock
    old_panel().to_parquet(out)
    assert clean_interrupted(out) == []


def test_output_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(InputError, match="is a file"):
        old_panel().to_parquet(a_file)
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("mine")
    with pytest.raises(InputError, match="is not a folder this command wrote; refusing to replace it"):
        old_panel().to_parquet(foreign)
    assert (foreign / "chapter1.tex").read_text() == "mine" and a_file.read_text() == "mine"
    (tmp_path / "empty").mkdir()
    old_panel().to_parquet(tmp_path / "empty")  # an empty folder is fine
    assert ce.read_panel(tmp_path / "empty").enterprise.shape[0] == 2
