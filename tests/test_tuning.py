"""``python tuning/search.py``: KerasTuner search on a small prepared dataset.

Trials train one epoch of a small Mult-VAE on 1,500 synthetic users. The
search killed with SIGKILL and the two workers of a distributed search run
as subprocesses.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types

import keras_tuner as kt
import pytest
import tensorflow as tf
from conftest import REPO
from keras_tuner.src.distribute import oracle_chief
from tensorboard.plugins.hparams import plugin_data_pb2

from tf_multvae import config as cfg
from tf_multvae import train
from tuning import hparams
from tuning import hypermodel as hm
from tuning import results
from tuning import search
from tuning import space as space_lib

SMALL = ["--latent-dim", "8,16", "--hidden-width", "32", "--epochs", "1"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def dataset(small_dataset) -> str:
    return small_dataset


def read_rows(out) -> list[dict]:
    with open(os.path.join(out, "trials.csv")) as f:
        return list(csv.DictReader(f))


def trial_files(out) -> dict[str, dict]:
    """trial id -> trial.json, as the oracle wrote them."""
    found = {}
    root = os.path.join(out, "trials")
    for name in os.listdir(root) if os.path.isdir(root) else ():
        path = os.path.join(root, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as f:
                try:
                    trial = json.load(f)
                except json.JSONDecodeError:  # being written
                    continue
            found[trial["trial_id"]] = trial
    return found


def hparams_summaries(log_dir) -> dict[str, object]:
    """run directory (relative) -> HParamsPluginData, from event files."""
    out = {}
    for root, _, files in os.walk(log_dir):
        for name in files:
            if not name.startswith("events.out.tfevents"):
                continue
            path = os.path.join(root, name)
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    plugin = value.metadata.plugin_data
                    if plugin.plugin_name == "hparams":
                        out[os.path.relpath(root, log_dir)] = (
                            plugin_data_pb2.HParamsPluginData.FromString(
                                plugin.content
                            )
                        )
    return out


def _search_args(dataset, out) -> list[str]:
    return [
        "--data-dir",
        dataset,
        "--tuner",
        "bayesian",
        "--max-trials",
        "2",
        "--out",
        out,
        *SMALL,
    ]


@pytest.fixture(scope="module")
def finished(dataset, tmp_path_factory) -> tuple[str, str]:
    """A search of two trials: its --out and what it printed."""
    out = str(tmp_path_factory.mktemp("search") / "out")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert search.main(_search_args(dataset, out)) == 0
    return out, printed.getvalue()


def test_search_writes_results_and_hparams(finished):
    out, printed = finished
    rows = read_rows(out)
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert all(r["status"] == "COMPLETED" for r in rows)
    for row in rows:
        assert 0 < float(row["val_ndcg_at_100"]) <= 1
        assert row["epochs"] == "1" and row["best_epoch"] == "1"
        assert float(row["seconds"]) > 0
        assert int(row["latent_dim"]) in (8, 16)
        assert 0 <= float(row["dropout"]) <= 0.8
        assert 0 <= float(row["anneal_cap"]) <= 1
    best_row = max(rows, key=lambda r: float(r["val_ndcg_at_100"]))
    with open(os.path.join(out, "best_hyperparameters.json")) as f:
        best = json.load(f)
    assert best["trial"] == best_row["trial"]
    assert best["val_ndcg_at_100"] == pytest.approx(
        float(best_row["val_ndcg_at_100"])
    )
    assert best["hyperparameters"]["latent_dim"] == int(best_row["latent_dim"])
    assert best["hyperparameters"]["dropout"] == pytest.approx(
        float(best_row["dropout"])
    )
    # The oracle agrees: its best trial is the one reported.
    oracle_best = trial_files(out)[best["trial"]]
    assert oracle_best["score"] == pytest.approx(best["val_ndcg_at_100"])
    markdown = open(os.path.join(out, "trials.md")).read().splitlines()
    assert len(markdown) == 4 and "val NDCG@100" in markdown[0]
    assert best["command"] in printed
    assert (
        open(os.path.join(out, "retrain.sh"))
        .read()
        .strip()
        .endswith(best["command"])
    )
    # The HParams dashboard: the experiment at the root, a session per
    # trial with the trial's values.
    summaries = hparams_summaries(os.path.join(out, "logs"))
    experiment = summaries["."].experiment
    assert {h.name for h in experiment.hparam_infos} == {
        "dropout",
        "anneal_cap",
        "latent_dim",
        "hidden_width",
    }
    assert hparams.BEST_TAG in {m.name.tag for m in experiment.metric_infos}
    for row in rows:
        session = summaries[f"trial_{row['trial']}"].session_start_info
        assert session.hparams["latent_dim"].number_value == int(
            row["latent_dim"]
        )
        assert session.hparams["dropout"].number_value == pytest.approx(
            float(row["dropout"])
        )
    for tag in ("train", "validation"):
        assert os.listdir(os.path.join(out, "logs", "trial_0", tag))


def test_retrain_command_trains_the_best_configuration(dataset, tmp_path):
    """The printed command, parsed by train, gives the trial's config."""
    values = {
        "dropout": 0.31,
        "anneal_cap": 0.07,
        "latent_dim": 100,
        "learning_rate": 0.002,
        "total_anneal_steps": 500,
        "hidden_width": 300,
    }
    base = cfg.PRESETS["ml-1m"]
    config = space_lib.apply(base, values)
    command = results.retrain_command(
        config,
        tuple(values),
        dataset,
        str(tmp_path / "r"),
        {"--epochs": base.train.epochs},
    )
    argv = command.split()
    assert argv[:3] == ["python", "-m", "tf_multvae.train"]
    parsed = train.config_from_args(train.parse_args(argv[3:]))
    assert parsed == config
    assert config.model.hidden_dims == (300,)
    assert config.train.learning_rate == 0.002


def test_search_space_of_the_dae(dataset, tmp_path):
    base = cfg.RunConfig("synthetic", cfg.dae_defaults(cfg.ModelConfig()))
    model = hm.MultVAEHyperModel(base, dataset, space_lib.SearchSpace())
    assert model.space.names == ("dropout", "latent_dim")
    hp = kt.HyperParameters()
    built = model.build(hp)
    assert set(hp.values) == {"dropout", "latent_dim"}
    assert built.latent_dim == hp.values["latent_dim"]
    with pytest.raises(ValueError, match="--total-anneal-steps applies"):
        hm.MultVAEHyperModel(
            base, dataset, space_lib.SearchSpace(total_anneal_steps=(10,))
        )


def test_hyperband_continues_a_model_and_its_beta(dataset):
    """A Hyperband round trains epochs initial_epoch .. epochs - 1."""
    base = cfg.PRESETS["synthetic"]
    model = hm.MultVAEHyperModel(
        base,
        dataset,
        space_lib.SearchSpace(latent_dim=(8,), hidden_width=(16,)),
    )
    hp = kt.HyperParameters()
    keras_model = model.build(hp)
    result = model.fit(hp, keras_model, epochs=3, initial_epoch=2)
    assert result["epochs"] == 3 and result["best_epoch"] == 3
    steps = 3  # 1,200 training users, batches of 500
    assert int(keras_model.optimizer.iterations.numpy()) == 3 * steps


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--latent-dim", ""], "--latent-dim is empty"),
        (["--latent-dim", "50,big"], "--latent-dim: 'big' is not an integer"),
        (["--dropout", "0.5,0.1"], "--dropout takes MIN,MAX with MIN <= MAX"),
        (["--dropout", "0,1.5"], "--dropout values must be in [0, 1)"),
        (["--lr", "0,0.1"], "--lr values must be > 0"),
        (["--hidden-width", "0"], "--hidden-width values must be >= 1"),
        (["--max-trials", "0"], "--max-trials must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (
            ["--model", "dae", "--anneal-cap", "0,0.5"],
            "--anneal-cap applies to --model vae only",
        ),
        (["--dataset", "movielens-7b"], "--dataset must be one of"),
    ],
)
def test_bad_input_is_named(dataset, tmp_path, capsys, flags, message):
    args = ["--data-dir", dataset, "--out", str(tmp_path / "s"), *flags]
    assert search.main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s" / "trials").exists()


def test_not_a_prepared_dataset(tmp_path, capsys):
    args = ["--data-dir", str(tmp_path), "--out", str(tmp_path / "s")]
    assert search.main(args) == 2
    assert f"{tmp_path} is not a prepared dataset" in capsys.readouterr().err


def test_unknown_tuner_is_named(capsys):
    with pytest.raises(SystemExit) as err:
        search.main(["--data-dir", "d", "--tuner", "grid"])
    assert err.value.code == 2
    assert "--tuner" in capsys.readouterr().err


def _script(argv) -> list[str]:
    return [sys.executable, os.path.join("tuning", "search.py"), *argv]


@pytest.mark.slow
def test_sigkill_then_the_same_command_continues(dataset, tmp_path):
    """After a kill no finished trial is lost, and the total is reached."""
    out = str(tmp_path / "search")
    argv = [
        "--data-dir",
        dataset,
        "--tuner",
        "random",
        "--max-trials",
        "2",
        "--out",
        out,
        *SMALL,
    ]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(
        _script(argv), cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT
    )
    # Kill once a trial has finished and the next one is running: the
    # finished trial's bookkeeping is then complete.
    deadline = time.time() + 300
    try:
        while True:
            trials = trial_files(out)
            status = sorted(t["status"] for t in trials.values())
            if "COMPLETED" in status and "RUNNING" in status:
                break
            assert proc.poll() is None, open(tmp_path / "first.log").read()
            assert time.time() < deadline, "no trial finished in time"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = {
        i: t for i, t in trial_files(out).items() if t["status"] == "COMPLETED"
    }
    assert len(finished) == 1
    saved = {
        i: open(os.path.join(out, "trials", f"trial_{i}", "trial.json")).read()
        for i in finished
    }
    assert search.main(argv) == 0
    rows = read_rows(out)
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)
    for i, text in saved.items():  # kept as they were, not run again
        path = os.path.join(out, "trials", f"trial_{i}", "trial.json")
        assert open(path).read() == text


@pytest.mark.slow
def test_another_search_in_the_same_out_needs_overwrite(
    dataset, finished, capsys
):
    out, _ = finished
    args = _search_args(dataset, out)
    before = trial_files(out)
    assert search.main(args + ["--dropout", "0,0.2"]) == 2
    assert "differs in space" in capsys.readouterr().err
    assert trial_files(out) == before
    assert search.main(args) == 0  # finished: nothing more to run
    assert trial_files(out) == before
    assert (
        search.main(
            args + ["--max-trials", "1", "--dropout", "0,0.2", "--overwrite"]
        )
        == 0
    )
    rows = read_rows(out)
    assert len(rows) == 1 and float(rows[0]["dropout"]) <= 0.2
    assert len(trial_files(out)) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_workers_share_one_oracle(dataset, tmp_path, monkeypatch):
    """KerasTuner's chief serves the oracle, the workers run its trials.

    Each process has its own --out, as on separate machines: the chief's
    holds every trial and the results, each worker's the logs of the
    trials it ran. The chief runs here, in a thread (one TensorFlow start
    fewer); the two workers are subprocesses.
    """
    port = str(_free_port())
    argv = [
        "--data-dir",
        dataset,
        "--tuner",
        "random",
        "--max-trials",
        "4",
        *SMALL,
    ]
    workers = {}
    for tuner_id in ("tuner0", "tuner1"):
        env = {
            **ENV,
            "KERASTUNER_TUNER_ID": tuner_id,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": port,
        }
        workers[tuner_id] = subprocess.Popen(
            _script([*argv, "--out", str(tmp_path / tuner_id)]),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    # The chief rechecks every 20 s whether the last worker is done; the
    # test need not wait that long.
    monkeypatch.setattr(
        oracle_chief,
        "time",
        types.SimpleNamespace(sleep=lambda s: time.sleep(min(s, 0.5))),
    )
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", port)
    chief = {}
    thread = threading.Thread(
        target=lambda: chief.update(
            code=search.main([*argv, "--out", str(tmp_path / "chief")])
        ),
        daemon=True,
    )
    thread.start()
    outputs = {}
    try:
        for tuner_id, proc in workers.items():
            outputs[tuner_id], _ = proc.communicate(timeout=400)
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.kill()
    for tuner_id, proc in workers.items():
        assert proc.returncode == 0, outputs[tuner_id][-3000:]
    thread.join(timeout=120)
    assert chief.get("code") == 0
    rows = read_rows(tmp_path / "chief")
    assert [r["status"] for r in rows] == ["COMPLETED"] * 4
    ran = {}
    for worker in ("tuner0", "tuner1"):
        assert f"worker {worker}: search done" in outputs[worker]
        logs = tmp_path / worker / "logs"
        ran[worker] = {
            name[len("trial_") :]
            for name in os.listdir(logs)
            if name.startswith("trial_")
        }
        assert ran[worker], f"{worker} ran no trial"
    assert not ran["tuner0"] & ran["tuner1"]
    assert ran["tuner0"] | ran["tuner1"] == {r["trial"] for r in rows}
    assert (tmp_path / "chief" / "best_hyperparameters.json").exists()
