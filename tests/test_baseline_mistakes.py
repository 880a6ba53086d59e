"""A baseline's bad flag stops before anything is written, naming it."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from conftest import IN_PROCESS

from tf_multvae.baselines import command


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    from data_prep import pipeline

    out = tmp_path_factory.mktemp("mistakes") / "synthetic"
    code = pipeline.main(
        ["--dataset", "synthetic", "--synthetic-users", "400",
         "--synthetic-items", "150", "--out", str(out), *IN_PROCESS]
    )  # fmt: skip
    assert code == 0
    return str(out)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--model", "wmf", "--factors", "0"], "--factors"),
        (["--model", "wmf", "--iterations", "0"], "--iterations"),
        (["--model", "wmf", "--confidence", "-1"], "--confidence"),
        (["--model", "slim", "--l1", "0"], "--l1"),
        (["--model", "slim", "--l2", "-1"], "--l2"),
        (["--model", "ease", "--l2", "0"], "--l2"),
        (["--model", "popularity", "--factors", "10"], "--factors"),
        (["--model", "ease", "--grid", "--l2", "5"], "--grid varies l2"),
        (["--model", "popularity", "--grid"], "popularity has no grid"),
        (["--model", "wmf", "--grid", "--iterations", "0"], "--iterations"),
        (["--model", "wmf", "--grid", "--factors", "64"], "varies factors"),
        (["--model", "slim", "--grid", "--l2", "0.5"], "--grid varies l2"),
    ],
)
def test_bad_values_name_the_flag_and_write_nothing(
    dataset, tmp_path, capsys, flags, message
):
    run_dir = tmp_path / "run"
    argv = [*flags, "--data-dir", dataset, "--run-dir", str(run_dir)]
    assert command.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1  # one line
    assert not os.path.exists(run_dir)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_by_the_parser(
    dataset, tmp_path, capsys, value
):
    argv = ["--model", "wmf", "--confidence", value, "--data-dir", dataset,
            "--run-dir", str(tmp_path / "run")]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        command.main(argv)
    assert exit_.value.code == 2
    assert "--confidence" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("grid", [False, True])
def test_slim_beyond_the_memory_budget_stops_with_the_figure(
    dataset, tmp_path, capsys, grid
):
    run_dir = tmp_path / "run"
    argv = ["--model", "slim", "--max-memory", "0.0001", "--data-dir",
            dataset, "--run-dir", str(run_dir)]  # fmt: skip
    assert command.main(argv + ["--grid"] * grid) == 1
    err = capsys.readouterr().err.splitlines()
    # check() prints the estimate first, then the one error line.
    error = [line for line in err if line.startswith("error: ")]
    assert len(error) == 1, err
    assert re.match(
        r"error: SLIM on [\d,]+ items needs up to [\d.]+ GB of memory .* "
        r"but 0\.00 GB is available \(--max-memory 0\.0001\)$",
        error[0],
    ), error[0]
    assert not os.path.exists(run_dir)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_a_budget_that_is_not_positive_is_named(
    dataset, tmp_path, capsys, value
):
    argv = ["--model", "ease", "--max-memory", value, "--data-dir", dataset,
            "--run-dir", str(tmp_path / "run")]  # fmt: skip
    assert command.main(argv) == 2
    assert "--max-memory must be > 0" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")


@pytest.fixture(scope="module")
def without_training_users(dataset, tmp_path_factory) -> str:
    """The dataset with its training split emptied, consistently: empty
    train shards, and metadata.json saying so."""
    from tf_multvae import features

    copy = str(tmp_path_factory.mktemp("no-train") / "data")
    shutil.copytree(dataset, copy)
    path = os.path.join(copy, features.METADATA_FILE)
    with open(path) as f:
        metadata = json.load(f)
    for shard in metadata[features.SHARD_LISTING][features.TRAIN]:
        open(os.path.join(copy, shard["name"]), "wb").close()
        shard.update(bytes=0, records=0)
    metadata["splits"][features.TRAIN].update(users=0, interactions=0)
    with open(path, "w") as f:
        json.dump(metadata, f)
    return copy


@pytest.mark.parametrize("model", ["ease", "slim", "wmf"])
def test_a_baseline_without_training_users_is_refused(
    without_training_users, tmp_path, capsys, model
):
    run_dir = tmp_path / "run"
    argv = ["--model", model, "--data-dir", without_training_users,
            "--run-dir", str(run_dir)]  # fmt: skip
    assert command.main(argv) == 2
    assert "has no training users to fit on" in capsys.readouterr().err
    assert not os.path.exists(run_dir)


@pytest.mark.parametrize("grid", [False, True])
def test_cdae_without_training_users_is_refused(
    without_training_users, tmp_path, capsys, grid
):
    from tf_multvae import train

    run_dir = tmp_path / "run"
    argv = ["--dataset", "ml-1m", "--model", "cdae",
            "--data-dir", without_training_users,
            "--run-dir", str(run_dir), "--epochs", "1"]  # fmt: skip
    assert train.main(argv + ["--grid"] * grid) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"{without_training_users} has no training users" in err
    assert not os.path.exists(run_dir)
