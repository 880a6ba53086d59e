"""A killed data-prep run: what it leaves is recovered or removed by the
next run, which says so, and its worker processes die with it.

The swap's states are built by hand from copies of a real prepared
dataset (a kill between two renames cannot be timed from outside); the
kill of a running pipeline is real (SIGKILL to ``python -m data_prep``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import IN_PROCESS
from conftest import REPO

from data_prep import pipeline
from data_prep import workspace
from tf_multvae import features
from tf_multvae import staging

META = features.METADATA_FILE


def _dead_owner() -> dict:
    """An owner record of a process that is no longer running: this pid,
    but a start time it never had."""
    return {"pid": os.getpid(), "start": "1", "host": socket.gethostname()}


def _dataset(path, marker: str) -> str:
    """A stand-in dataset directory: metadata.json plus a marker file."""
    os.makedirs(path)
    with open(os.path.join(path, META), "w") as f:
        json.dump({"marker": marker}, f)
    return str(path)


def _marker(path) -> str:
    with open(os.path.join(path, META)) as f:
        return json.load(f)["marker"]


def _journal(out, new, old, owner=None):
    with open(staging.journal_path(str(out)), "w") as f:
        json.dump({**(owner or _dead_owner()), "new": new, "old": old}, f)


def _hidden(parent) -> list[str]:
    return sorted(e for e in os.listdir(parent) if e.startswith("."))


def test_a_swap_killed_between_its_renames_is_finished(tmp_path):
    # The old dataset was moved aside, the new one not yet moved in.
    out = tmp_path / "ds"
    new = _dataset(tmp_path / ".ds.tmp-aaaa0001", "new")
    old = _dataset(tmp_path / ".ds.old-aaaa0001", "old")
    _journal(out, new, old)
    said = staging.recover(str(out), META)
    assert len(said) == 1 and "finished the swap" in said[0], said
    assert _marker(out) == "new"
    assert _hidden(tmp_path) == []


def test_a_swap_killed_before_its_first_rename_is_finished(tmp_path):
    out = _dataset(tmp_path / "ds", "old")
    new = _dataset(tmp_path / ".ds.tmp-aaaa0002", "new")
    _journal(out, new, str(tmp_path / ".ds.old-aaaa0002"))
    said = staging.recover(out, META)
    assert "finished the swap" in said[0]
    assert _marker(out) == "new"
    assert _hidden(tmp_path) == []


def test_a_swap_killed_while_removing_the_old_dataset_is_cleaned(tmp_path):
    out = _dataset(tmp_path / "ds", "new")
    old = _dataset(tmp_path / ".ds.old-aaaa0003", "old")
    _journal(out, str(tmp_path / ".ds.tmp-aaaa0003"), old)
    staging.recover(out, META)
    assert _marker(out) == "new"
    assert _hidden(tmp_path) == []


def test_the_old_dataset_is_restored_when_no_new_one_is_finished(tmp_path):
    out = tmp_path / "ds"
    old = _dataset(tmp_path / ".ds.old-aaaa0004", "old")
    _journal(out, str(tmp_path / ".ds.tmp-gone"), old)
    said = staging.recover(str(out), META)
    assert len(said) == 1 and said[0].startswith(f"restored {out}"), said
    assert _marker(out) == "old"
    assert _hidden(tmp_path) == []


def test_a_legacy_hidden_copy_is_restored(tmp_path):
    # Earlier versions: out renamed to .NAME.tmp-ID.old, no journal.
    out = tmp_path / "ds"
    _dataset(tmp_path / ".ds.tmp-1234abcd.old", "old")
    said = staging.recover(str(out), META)
    assert said and "restored" in said[0]
    assert _marker(out) == "old"
    assert _hidden(tmp_path) == []


def test_a_running_swap_and_staging_are_left_alone(tmp_path):
    out = tmp_path / "ds"
    live = {"pid": os.getpid(), "host": socket.gethostname()}
    live["start"] = staging._start_time(os.getpid())
    new = _dataset(tmp_path / ".ds.tmp-live0001", "new")
    old = _dataset(tmp_path / ".ds.old-live0001", "old")
    _journal(out, new, old, owner=live)
    writing = staging.staging_dir(str(out))  # owned by this process
    before = _hidden(tmp_path)
    assert staging.recover(str(out), META) == []
    assert _hidden(tmp_path) == before
    assert os.path.isdir(writing)


def test_dead_staging_is_removed_and_other_datasets_untouched(tmp_path):
    out = tmp_path / "ds"
    dead = tmp_path / ".ds.tmp-dead0001"
    dead.mkdir()
    (dead / "multvae-train.tfrecord-00000-of-00002").write_bytes(b"x" * 100)
    (dead / staging.OWNER_FILE).write_text(json.dumps(_dead_owner()))
    other = tmp_path / ".other.tmp-dead0002"  # another --out's staging
    other.mkdir()
    (other / staging.OWNER_FILE).write_text(json.dumps(_dead_owner()))
    said = staging.recover(str(out), META)
    assert len(said) == 1 and "removed 1 staging folder" in said[0]
    assert str(dead) in said[0]
    assert not dead.exists() and other.exists()


def test_dead_scratch_is_removed_live_scratch_kept(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = tmp_path / f"{workspace.SCRATCH_PREFIX}dead"
    dead.mkdir()
    (dead / staging.OWNER_FILE).write_text(json.dumps(_dead_owner()))
    (dead / "ratings.csv").write_bytes(b"1,2,5\n" * 1000)
    unrelated = tmp_path / "beam-pipeline-temp-someone-else"
    unrelated.mkdir()
    with workspace.Scratch() as scratch:
        assert os.environ["TMPDIR"] == scratch.path
        said = workspace.remove_dead_scratch()
        assert os.path.isdir(scratch.path)
    assert len(said) == 1 and str(dead) in said[0]
    assert not dead.exists() and unrelated.exists()
    assert not os.path.exists(scratch.path)


def test_data_prep_finishes_an_interrupted_swap_and_says_so(
    tmp_path, report_dataset, capsys
):
    out = tmp_path / "ds"
    new = str(tmp_path / ".ds.tmp-cafe0001")
    old = str(tmp_path / ".ds.old-cafe0001")
    shutil.copytree(report_dataset, new)
    shutil.copytree(report_dataset, old)
    _journal(out, new, old)
    # Without --overwrite the run then refuses the existing --out: what
    # the recovery did is what stays.
    code = pipeline.main(
        ["--dataset", "synthetic", "--out", str(out), *IN_PROCESS]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "finished the swap" in captured.out
    assert "already exists" in captured.err
    assert os.path.isfile(out / META)
    assert _hidden(tmp_path) == []


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started
    them (Beam starts its workers from a thread)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc (Linux)"
)
def test_killed_prep_stops_its_workers_and_the_next_run_cleans_up(tmp_path):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(scratch_root),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "data_prep", "--dataset", "synthetic"]
    proc = subprocess.Popen(
        [*cmd, "--synthetic-users", "60000", "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    workers = []
    deadline = time.time() + 120
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = _children(proc.pid)
        assert proc.poll() is None, proc.communicate()
    assert len(workers) >= 2, "the pipeline's workers never started"
    time.sleep(2)  # the workers are reading
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "workers outlived the kill"
    left = _hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(".ds.tmp-"), left
    scratch = os.listdir(scratch_root)
    assert any(e.startswith(workspace.SCRATCH_PREFIX) for e in scratch)

    done = subprocess.run(
        [*cmd, "--synthetic-users", "400", "--synthetic-items", "100"]
        + ["--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "removed 1 staging folder(s)" in done.stdout
    assert "removed 1 scratch folder(s)" in done.stdout
    assert done.stderr == ""  # quiet: the account is on stdout
    assert _hidden(tmp_path) == []
    # Only the killed run's log file is left (kept: it may tell why).
    left = os.listdir(scratch_root)
    assert all(e.startswith("data_prep-") and e.endswith(".log") for e in left)
    assert os.path.isfile(out / META)
