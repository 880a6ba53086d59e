"""``python -m tf_multvae.train`` end to end on a small prepared dataset."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from conftest import REPO

from tf_multvae import rundir
from tf_multvae import train

SMALL = [
    "--hidden-dims",
    "32",
    "--latent-dim",
    "16",
    "--batch-size",
    "100",
    "--total-anneal-steps",
    "200",
    "--log-every",
    "2",
]


@pytest.fixture(scope="module")
def dataset(small_dataset) -> str:
    return small_dataset


def read_scalars(log_dir: str) -> dict[str, list[float]]:
    """tag -> values, from the TensorBoard event files under log_dir."""
    out: dict[str, list[float]] = {}
    for root, _, files in os.walk(log_dir):
        for name in files:
            if not name.startswith("events.out.tfevents"):
                continue
            for event in tf.compat.v1.train.summary_iterator(
                os.path.join(root, name)
            ):
                for value in event.summary.value:
                    number = float(tf.make_ndarray(value.tensor))
                    key = f"{os.path.basename(root)}/{value.tag}"
                    out.setdefault(key, []).append(number)
    return out


def test_train_writes_the_run_directory(dataset, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = train.main(
        [
            "--dataset",
            "synthetic",
            "--data-dir",
            dataset,
            "--run-dir",
            str(run_dir),
            "--epochs",
            "3",
            *SMALL,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "ndcg_at_100" in printed and "tensorboard --logdir" in printed
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    for name in ("ndcg_at_100", "recall_at_20", "recall_at_50"):
        assert 0 < test[name]["mean"] <= 1 and test[name]["stderr"] > 0
    assert test["users"] > 0
    assert len(metrics["validation"]["ndcg_at_100"]) == 3
    best = max(metrics["validation"]["ndcg_at_100"])
    best_epoch = metrics["best_epoch"]
    assert metrics["validation"]["ndcg_at_100"][best_epoch - 1] == best
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["hidden_dims"] == [32]
    assert config["train"]["epochs"] == 3
    assert (run_dir / "best.weights.h5").exists()
    assert (run_dir / "best.keras").exists()
    scalars = read_scalars(str(run_dir / "logs"))
    for tag in (
        "train/neg_elbo",
        "train/nll",
        "train/kl",
        "train/beta",
        "validation/ndcg_at_100",
        "validation/recall_at_20",
        "validation/recall_at_50",
    ):
        assert scalars.get(tag), f"no {tag} in {sorted(scalars)}"
        assert all(math.isfinite(v) for v in scalars[tag])
    assert len(scalars["validation/ndcg_at_100"]) == 3
    # β = min(cap, t / total) at the logged updates (every 2nd of 45).
    assert scalars["train/beta"][0] == pytest.approx(1 / 200)


def test_a_rerun_removes_what_a_killed_writer_left(dataset, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["--dataset", "synthetic", "--data-dir", dataset]
    argv += ["--run-dir", str(run_dir), "--epochs", "1", *SMALL]
    assert train.main(argv) == 0
    test = json.loads((run_dir / rundir.METRICS).read_text())["test"]
    # A kill while writing JSON, the best weights, a backup checkpoint:
    left = [
        run_dir / (rundir.METRICS + rundir.TMP),
        run_dir / (rundir.BEST_WEIGHTS + rundir.WEIGHTS_TMP),
        run_dir / rundir.BACKUP / f"ckpt-2{rundir.BACKUP_TMP}",
    ]
    for path in left[:2]:
        path.write_bytes(b"half a file")
    left[2].mkdir()
    (left[2] / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    capsys.readouterr()
    assert train.main(argv) == 0  # the same command: continues, finished
    err = capsys.readouterr().err
    assert "removed 3 temporary file(s) an interrupted run left" in err
    assert not any(path.exists() for path in left)
    assert json.loads((run_dir / rundir.METRICS).read_text())["test"] == test


@pytest.mark.slow
def test_dae_trains_with_its_defaults(dataset, tmp_path):
    run_dir = tmp_path / "dae"
    code = train.main(
        [
            "--dataset",
            "synthetic",
            "--model",
            "dae",
            "--data-dir",
            dataset,
            "--run-dir",
            str(run_dir),
            "--epochs",
            "2",
            "--batch-size",
            "100",
        ]
    )
    assert code == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["kind"] == "dae"
    assert config["model"]["hidden_dims"] == []
    assert config["model"]["weight_decay"] == pytest.approx(0.01 / 500)


@pytest.mark.parametrize(
    "flags,message",
    [
        (
            ["--data-dir", "/no/such/dir"],
            "--data-dir /no/such/dir does not exist",
        ),
        (["--lr", "-0.1"], "--lr must be > 0"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["--epochs", "0"], "--epochs must be >= 1"),
    ],
)
def test_bad_arguments_are_named(tmp_path, capsys, flags, message):
    args = ["--dataset", "synthetic", "--run-dir", str(tmp_path / "r")]
    code = train.main(args + ["--data-dir", str(tmp_path)] + flags)
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag,value",
    [("--lr", "inf"), ("--anneal-cap", "nan"), ("--weight-decay", "nan"),
     ("--dropout", "-inf"), ("--cdae-negative-weight", "nan")],
)  # fmt: skip
def test_non_finite_numbers_are_refused_naming_the_flag(
    tmp_path, capsys, flag, value
):
    args = ["--dataset", "synthetic", "--run-dir", str(tmp_path / "r"),
            "--data-dir", str(tmp_path), f"{flag}={value}"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        train.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be finite, not '{value}'" in err
    assert not os.path.exists(tmp_path / "r")


def test_not_a_prepared_dataset(tmp_path, capsys):
    code = train.main(
        [
            "--dataset",
            "synthetic",
            "--data-dir",
            str(tmp_path),
            "--run-dir",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    assert f"{tmp_path} is not a prepared dataset" in capsys.readouterr().err


def test_unknown_dataset_is_named(capsys):
    with pytest.raises(SystemExit) as err:
        train.main(["--dataset", "movielens-7b"])
    assert err.value.code == 2
    assert "movielens-7b" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_directory_with_another_config_is_refused(
    dataset, tmp_path, capsys
):
    run_dir = str(tmp_path / "run")
    base = [
        "--dataset",
        "synthetic",
        "--data-dir",
        dataset,
        "--run-dir",
        run_dir,
    ]
    assert train.main(base + ["--epochs", "1", *SMALL]) == 0
    assert train.main(base + ["--epochs", "1", *SMALL, "--dropout", "0.3"]) == 2
    assert "differs in model" in capsys.readouterr().err


def _command(dataset, run_dir, epochs):
    return [
        sys.executable,
        "-m",
        "tf_multvae.train",
        "--dataset",
        "synthetic",
        "--data-dir",
        dataset,
        "--run-dir",
        run_dir,
        "--epochs",
        str(epochs),
        "--deterministic",
        *SMALL,
    ]


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_to_the_same_result(dataset, tmp_path):
    """Killed mid-epoch, restarted with the same command: the same run."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    epochs = 5
    straight = str(tmp_path / "straight")
    subprocess.run(
        _command(dataset, straight, epochs),
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
    )
    killed = str(tmp_path / "killed")
    proc = subprocess.Popen(
        _command(dataset, killed, epochs),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Wait until two epochs are backed up, then kill in the middle of the
    # third (the backup index names the finished epochs).
    index = os.path.join(killed, "backup", "checkpoint")
    deadline = time.time() + 240
    while time.time() < deadline:
        if os.path.exists(index) and "ckpt-2" in open(index).read():
            break
        assert proc.poll() is None, "training ended before it was killed"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed, "metrics.json"))
    resumed = subprocess.run(
        _command(dataset, killed, epochs),
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    a = json.loads(open(os.path.join(straight, "metrics.json")).read())
    b = json.loads(open(os.path.join(killed, "metrics.json")).read())
    assert 2 <= b["resumed_from_epoch"] < epochs
    backup = os.path.join(killed, "backup")
    said = f"resuming after epoch {b['resumed_from_epoch']} from {backup}"
    assert said in resumed.stderr
    assert b["validation"]["ndcg_at_100"] == a["validation"]["ndcg_at_100"]
    assert b["best_epoch"] == a["best_epoch"]
    assert b["test"] == a["test"]


def test_nan_loss_stops_with_a_message(dataset, tmp_path, capsys):
    # An absurd learning rate blows the weights up within the first epoch.
    code = train.main(
        [
            "--dataset",
            "synthetic",
            "--data-dir",
            dataset,
            "--run-dir",
            str(tmp_path / "nan"),
            "--epochs",
            "3",
            "--lr",
            "1e30",
            *SMALL,
        ]
    )
    assert code == 1
    assert "NaN" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "nan" / "backup" / "checkpoint")


@pytest.mark.slow
def test_nan_after_a_good_epoch_keeps_the_best_weights(dataset, tmp_path):
    """NanGuard stops; BestWeights and EpochBackup keep the last good state."""
    import keras
    import numpy as np

    from tf_multvae import data
    from tf_multvae import datadir
    from tf_multvae.model import build_model
    from tf_multvae.model import compile_model
    from tf_multvae.training import callbacks as cb

    model = build_model(
        "vae",
        datadir.load_info(dataset).n_items,
        hidden_dims=(32,),
        latent_dim=16,
        seed=0,
    )
    compile_model(model)
    model.optimizer.build(model.trainable_variables)
    guard = cb.NanGuard()
    backup = cb.EpochBackup(str(tmp_path / "backup"), model, guard)
    best = cb.BestWeights(str(tmp_path), 0, guard)
    train_ds = data.train_dataset(dataset, 100, seed=0)
    valid_ds = data.eval_dataset(dataset, "validation", 100)
    fit = dict(
        validation_data=valid_ds, callbacks=[guard, best, backup], verbose=0
    )
    model.fit(train_ds, epochs=1, **fit)
    good = [w.copy() for w in model.get_weights()]
    assert guard.stopped_at is None and best.state["best_epoch"] == 1

    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                kernel = model.decoder.trainable_variables[0]
                kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    fit["callbacks"] = [Poison(), guard, best, backup]
    model.fit(train_ds, epochs=3, initial_epoch=1, **fit)
    assert guard.stopped_at is not None and guard.stopped_at[0] == 1
    assert best.state["best_epoch"] == 1
    assert len(best.state["history"]["ndcg_at_100"]) == 1
    model.load_weights(str(tmp_path / rundir.BEST_WEIGHTS))
    for got, want in zip(model.get_weights(), good):
        np.testing.assert_array_equal(got, want)
    assert backup.restore() == 1  # the NaN epoch was not backed up
