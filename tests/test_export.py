"""SavedModel export (tf_multvae.serving.export): ``train --export-dir``,
the export command's numbered versions, and the runs it refuses.

The exported run is conftest's ``serving_run``; the signatures themselves
are test_signatures'.
"""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from tf_multvae import features
from tf_multvae.serving import export

# 1. Export layout and versions -------------------------------------------


def test_train_exports_its_best_model(serving_run, saved_model):
    assert (saved_model / "saved_model.pb").exists()
    assert (saved_model / "variables").is_dir()
    assert (saved_model / "assets" / features.VOCAB_FILE).exists()
    # Nothing else under the model_base_path: no half-written versions.
    assert os.listdir(saved_model.parent) == ["1"]


@pytest.mark.slow
def test_cli_writes_numbered_versions(serving_run, tmp_path, capsys):
    out = tmp_path / "models"
    base = ["--run-dir", str(serving_run), "--out", str(out), "--top-k", "5"]
    assert export.main(base) == 0
    assert export.main(base) == 0  # next version
    assert sorted(os.listdir(out)) == ["1", "2"]
    assert "SavedModel:" in capsys.readouterr().out
    assert export.main(base + ["--version", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{out / '2'} already exists; pass --overwrite" in err
    assert export.main(base + ["--version", "2", "--overwrite"]) == 0
    assert export.main(base + ["--version", "7"]) == 0
    assert sorted(os.listdir(out)) == ["1", "2", "7"]  # no staging left
    loaded = tf.saved_model.load(str(out / "7"))
    assert int(loaded.top_k.numpy()) == 5


# 2. Bad input -------------------------------------------------------------


def test_a_run_without_a_best_model_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    code = export.main(["--run-dir", str(run), "--out", str(tmp_path / "m")])
    assert code == 2
    assert f"--run-dir {run} has no best model (best.keras)" in (
        capsys.readouterr().err
    )
    code = export.main(["--run-dir", str(tmp_path / "nope"), "--out", "m"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_top_k_larger_than_the_items_is_refused(
    serving_run, vocab, tmp_path, capsys
):
    too_many = len(vocab) + 1
    code = export.main(
        [
            "--run-dir",
            str(serving_run),
            "--out",
            str(tmp_path / "m"),
            "--top-k",
            str(too_many),
        ]
    )
    assert code == 2
    assert (
        f"--top-k {too_many} must be between 1 and the number of items, "
        f"{len(vocab)}" in capsys.readouterr().err
    )
    assert not (tmp_path / "m" / "1").exists()


def test_a_data_dir_that_is_not_a_dataset_is_refused(
    serving_run, tmp_path, capsys
):
    # Only a vocabulary (of another size): export checks the whole dataset.
    (tmp_path / features.VOCAB_FILE).write_text("a\nb\nc\n")
    code = export.main(
        [
            "--run-dir",
            str(serving_run),
            "--out",
            str(tmp_path / "m"),
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a prepared dataset: no metadata.json" in err
    assert not (tmp_path / "m").exists()
