"""SavedModel export (tf_multvae.serving.export): ``train --export-dir``,
the export command's numbered versions, and the runs it refuses.

The exported run is conftest's ``serving_run``; the signatures themselves
are test_signatures'.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import numpy as np
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


def _dead_journal(base, version, new, old):
    # This pid with a start time it never had: a process that is gone.
    owner = {"pid": os.getpid(), "start": "1", "host": socket.gethostname()}
    with open(base / f".{version}.swap.json", "w") as f:
        json.dump({**owner, "new": str(new), "old": str(old)}, f)


def test_an_export_killed_between_its_renames_is_finished(
    saved_model, tmp_path, capsys
):
    base = tmp_path / "models"
    base.mkdir()
    new, old = base / ".2.tmp-0000beef", base / ".2.old-0000beef"
    shutil.copytree(saved_model, new)
    shutil.copytree(saved_model, old)
    (old / "marker").write_text("the replaced version")
    _dead_journal(base, 2, new, old)
    export.version_dir(str(base), 3)  # what an export calls first
    assert "finished the swap" in capsys.readouterr().out
    assert sorted(os.listdir(base)) == ["2"]
    assert not (base / "2" / "marker").exists()
    tf.saved_model.load(str(base / "2"))  # the new version, whole


def test_an_older_exports_moved_version_is_put_back(
    saved_model, tmp_path, capsys
):
    # Earlier versions moved the replaced version to .replaced-V-ID/v.
    base = tmp_path / "models"
    shutil.copytree(saved_model, base / ".replaced-1-abc" / "v")
    os.utime(base / ".replaced-1-abc", (0, 0))
    (base / ".export-1-def").mkdir()
    os.utime(base / ".export-1-def", (0, 0))  # long untouched
    assert export.next_version(str(base)) == 1
    export.version_dir(str(base))
    out = capsys.readouterr().out
    assert "restored" in out and "removed 1 leftover folder(s)" in out
    assert sorted(os.listdir(base)) == ["1"]
    assert (base / "1" / "saved_model.pb").exists()


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


def _variables_bytes(version) -> int:
    return sum(f.stat().st_size for f in (version / "variables").iterdir())


def test_a_bfloat16_export_keeps_the_output_kernel_in_half_the_bytes(
    serving_run, keras_model, fold_in_users, saved_model, tmp_path
):
    import ml_dtypes

    out = tmp_path / "models"
    args = ["--run-dir", str(serving_run), "--out", str(out)]
    assert export.main(args + ["--output-dtype", "bfloat16"]) == 0
    loaded = tf.saved_model.load(str(out / "1"))
    kernel = keras_model.decoder.output_layer.kernel.numpy()  # [h, items]
    assert loaded.output_kernel.dtype == tf.bfloat16
    assert tuple(loaded.output_kernel.shape) == kernel.shape
    # The float32 kernel is not saved: the variables shrink by 2 bytes an
    # entry (train --export-dir wrote the float32 export).
    assert not [v for v in loaded.model_variables if v.shape == kernel.shape]
    saved = _variables_bytes(saved_model) - _variables_bytes(out / "1")
    assert abs(saved - 2 * kernel.size) < 0.01 * kernel.size
    # The scores: the hidden layer and the kernel rounded to bfloat16,
    # multiplied, the product rounded to bfloat16, plus the float32 bias.
    k = int(loaded.top_k.numpy())
    users = tf.constant(fold_in_users)
    got = loaded.signatures["by_index"](item_indices=users)
    hidden = keras_model.decoder.hidden(keras_model.latent(users)).numpy()

    def bf16(x):
        return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16)

    product = bf16(hidden).astype(np.float32) @ bf16(kernel).astype(np.float32)
    bias = keras_model.decoder.output_layer.bias.numpy()
    reference = bf16(product).astype(np.float32) + bias
    top = got["item_indices"].numpy()
    picked = np.take_along_axis(reference, top, axis=1)
    ulp = np.abs(reference).max() / 128  # bfloat16 keeps 8 bits
    np.testing.assert_allclose(got["scores"].numpy(), picked, atol=ulp)
    for u, row in enumerate(fold_in_users):  # input items never return
        assert not set(top[u]) & set(row[row >= 0])
        rest = np.delete(reference[u], row[row >= 0])
        kth_best = np.sort(rest)[-k]
        assert (picked[u] >= kth_best - ulp).all()


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
