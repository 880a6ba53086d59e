"""A damaged or re-prepared dataset is refused, naming what is wrong.

Each damage is done to a copy of the report tests' prepared dataset: the
training command, the evaluation of an existing run and the baselines
command must each exit 2 with one ``error:`` line naming the shard, and
leave no run directory behind (an existing one unchanged).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from conftest import IN_PROCESS
from conftest import TINY

from tf_multvae import datadir
from tf_multvae import rundir
from tf_multvae import train
from tf_multvae.baselines import command
from tf_multvae.reports import evaluate

TRAIN0 = "multvae-train.tfrecord-00000-of-00002"
TRAIN1 = "multvae-train.tfrecord-00001-of-00002"
TEST = "multvae-test.tfrecord-00000-of-00001"


def _metadata(data_dir, change):
    path = os.path.join(data_dir, "metadata.json")
    with open(path) as f:
        metadata = json.load(f)
    change(metadata)
    with open(path, "w") as f:
        json.dump(metadata, f, indent=2)


def _empty(d):
    open(os.path.join(d, TRAIN1), "wb").close()
    return TRAIN1


def _delete(d):
    os.remove(os.path.join(d, TRAIN0))
    return TRAIN0


def _extra(d):
    name = "multvae-train.tfrecord-00002-of-00002"
    shutil.copy(os.path.join(d, TRAIN0), os.path.join(d, name))
    return name


def _truncate(d):
    path = os.path.join(d, TEST)
    os.truncate(path, os.path.getsize(path) - 10)
    return TEST


def _flip(d, name=TEST):
    path = os.path.join(d, name)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    return name


def _users_edited(d):
    def more(m):
        m["splits"]["test"]["users"] += 1

    _metadata(d, more)
    return "multvae-test.tfrecord"


def _records_edited(d):
    def shift(m):
        m["shard_files"]["train"][0]["records"] += 1
        m["shard_files"]["train"][1]["records"] -= 1

    _metadata(d, shift)
    return TRAIN0


def _old_truncated(d):
    """A dataset without the shard listing: the read itself finds it."""
    _metadata(d, lambda m: m.pop("shard_files"))
    return _truncate(d)


def _old_flipped(d):
    _metadata(d, lambda m: m.pop("shard_files"))
    return _flip(d)


DAMAGES = {
    "emptied": _empty,
    "deleted": _delete,
    "extra": _extra,
    "truncated": _truncate,
    "flipped": _flip,
    "users-edited": _users_edited,
    "records-edited": _records_edited,
    "old-truncated": _old_truncated,
    "old-flipped": _old_flipped,
}


@pytest.fixture(params=sorted(DAMAGES))
def damaged(request, tmp_path, report_dataset):
    data_dir = str(tmp_path / "data")
    shutil.copytree(report_dataset, data_dir)
    return data_dir, DAMAGES[request.param](data_dir), request.param


def _one_error(capsys, shard):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert shard in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]


def _snapshot(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[path] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_training_refuses_a_damaged_dataset(damaged, tmp_path, capsys):
    data_dir, shard, _ = damaged
    run_dir = tmp_path / "run"
    argv = ["--dataset", "synthetic", "--data-dir", data_dir]
    argv += ["--run-dir", str(run_dir), "--epochs", "1", *TINY]
    assert train.main(argv) == 2
    _one_error(capsys, shard)
    assert not run_dir.exists()


def test_baselines_refuse_a_damaged_dataset(damaged, tmp_path, capsys):
    data_dir, shard, _ = damaged
    run_dir = tmp_path / "run"
    argv = ["--model", "popularity", "--data-dir", data_dir]
    assert command.main([*argv, "--run-dir", str(run_dir)]) == 2
    _one_error(capsys, shard)
    assert not run_dir.exists()


def test_evaluate_refuses_a_damaged_dataset(damaged, tmp_path, capsys, vae_run):
    data_dir, shard, damage = damaged
    run_dir = str(tmp_path / "vae")
    shutil.copytree(vae_run, run_dir)
    if damage.startswith("old"):  # and a run from before fingerprints
        config = rundir.read_json(run_dir, rundir.CONFIG)
        del config[rundir.FINGERPRINT]
        rundir.write_json(os.path.join(run_dir, rundir.CONFIG), config)
    before = _snapshot(run_dir)
    argv = ["--run-dir", run_dir, "--data-dir", data_dir]
    assert evaluate.main(argv) == 2
    _one_error(capsys, shard)
    assert _snapshot(run_dir) == before


def test_a_baseline_refit_names_a_corrupt_training_shard(
    tmp_path, capsys, report_dataset, popularity_run
):
    data_dir = str(tmp_path / "data")
    shutil.copytree(report_dataset, data_dir)
    _flip(data_dir, TRAIN1)
    run_dir = str(tmp_path / "popularity")
    shutil.copytree(popularity_run, run_dir)
    before = _snapshot(run_dir)
    assert evaluate.main(["--run-dir", run_dir, "--data-dir", data_dir]) == 2
    _one_error(capsys, TRAIN1)
    assert _snapshot(run_dir) == before


def test_a_search_names_a_corrupt_training_shard(
    report_dataset, tmp_path, capsys
):
    # Same size, same record count: only reading the records finds it,
    # inside a KerasTuner trial, which must end the search with one line.
    from tuning import search

    data_dir = str(tmp_path / "data")
    shutil.copytree(report_dataset, data_dir)
    _flip(data_dir, TRAIN1)
    out = tmp_path / "search"
    code = search.main(
        ["--data-dir", data_dir, "--dataset", "synthetic"]
        + ["--out", str(out), "--max-trials", "1", "--epochs", "1"]
        + ["--latent-dim", "8", "--hidden-width", "16"]
    )
    assert code == 2
    _one_error(capsys, TRAIN1)


def test_resumed_training_keeps_an_existing_run_as_it_was(
    tmp_path, capsys, report_dataset
):
    data_dir = str(tmp_path / "data")
    shutil.copytree(report_dataset, data_dir)
    run_dir = str(tmp_path / "run")
    argv = ["--dataset", "synthetic", "--data-dir", data_dir]
    argv += ["--run-dir", run_dir, "--epochs", "1", *TINY]
    assert train.main(argv) == 0
    before = _snapshot(run_dir)
    _flip(data_dir, TEST)  # read again by the test evaluation
    capsys.readouterr()
    assert train.main(argv) == 2
    _one_error(capsys, TEST)
    assert _snapshot(run_dir) == before


def _prepare(out, users, overwrite=False):
    from data_prep import pipeline

    argv = ["--dataset", "synthetic", "--synthetic-users", str(users)]
    argv += ["--synthetic-items", "150", "--out", str(out), *IN_PROCESS]
    assert pipeline.main(argv + (["--overwrite"] if overwrite else [])) == 0


def test_a_dataset_prepared_again_is_refused(tmp_path, capsys):
    data_dir = tmp_path / "data"
    _prepare(data_dir, 400)
    run_dir = tmp_path / "vae"
    argv = ["--dataset", "synthetic", "--data-dir", str(data_dir)]
    argv += ["--run-dir", str(run_dir), *TINY]
    assert train.main([*argv, "--epochs", "1"]) == 0
    config = rundir.read_json(run_dir, rundir.CONFIG)
    assert config[rundir.FINGERPRINT] == datadir.fingerprint(str(data_dir))
    # A copy is the same preparation.
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    assert datadir.fingerprint(str(copy)) == config[rundir.FINGERPRINT]
    assert evaluate.main(["--run-dir", str(run_dir)]) == 0
    _prepare(data_dir, 450, overwrite=True)
    capsys.readouterr()
    before = _snapshot(run_dir)
    assert evaluate.main(["--run-dir", str(run_dir)]) == 2
    line = _one_error(capsys, "prepared again")
    assert str(run_dir) in line and str(data_dir) in line
    # Resuming the training there is refused too, naming the dataset.
    assert train.main([*argv, "--epochs", "2"]) == 2
    line = _one_error(capsys, "prepared again")
    assert str(data_dir) in line
    assert _snapshot(run_dir) == before


def test_a_run_without_fingerprint_resumes_and_is_collected(tmp_path):
    """Runs written before fingerprints: prepare continues them and
    finished() still finds them."""
    run_dir = str(tmp_path / "old")
    old = {"model": {"kind": "vae"}, "data_dir": "/d", "n_items": 3}
    rundir.prepare(run_dir, old, overwrite=False)
    rundir.write_json(os.path.join(run_dir, rundir.METRICS), {"test": {}})
    new = {**old, rundir.FINGERPRINT: "abc"}
    rundir.prepare(run_dir, new, overwrite=False)  # no refusal
    assert rundir.finished(run_dir, {"model": {"kind": "vae"}}) == {"test": {}}
    rundir.prepare(run_dir, new, overwrite=False)  # its own fingerprint
    with pytest.raises(ValueError, match="prepared again"):
        rundir.prepare(
            run_dir, {**old, rundir.FINGERPRINT: "other"}, overwrite=False
        )
