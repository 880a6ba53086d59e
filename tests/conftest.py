"""Shared fixtures: seeding, the real datasets in ../shared/data, Beam args,
and what several test files read but none changes, made once per session:

- ``small_dataset``: synthetic clicks of 1,500 users x 400 items;
- the report tests' (test_evaluate, test_baselines, test_compare,
  test_plots, test_table4) ``report_dataset`` of 600 users and its tiny
  runs: ``vae_run``, ``dae_run`` (2 epochs), ``popularity_run``,
  ``ease_run``;
- the serving tests' (test_signatures, test_export, test_recommend,
  test_rest) 2-epoch run exported by train: ``serving_run``,
  ``saved_model``, ``loaded_model``, ``keras_model``, ``vocab``,
  ``fold_in_users``.

Preparing data and training cost seconds each, so none is made twice.
"""

from __future__ import annotations

import json
import os
import pathlib
import random

import numpy as np
import pytest

# First: the package sets TF_ENABLE_ONEDNN_OPTS before TensorFlow loads.
import tf_multvae  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
# The real datasets may not be redistributed, so they are never committed:
# tests read them from ../shared/data or from $TF_MULTVAE_SHARED_DATA.
SHARED_DATA = pathlib.Path(
    os.environ.get("TF_MULTVAE_SHARED_DATA", REPO.parent / "shared" / "data")
)

# In-process runner: the multi-process default costs seconds per pipeline.
IN_PROCESS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
# The report tests' tiny model (their runs take a second or two).
TINY = [
    "--hidden-dims",
    "16",
    "--latent-dim",
    "8",
    "--batch-size",
    "100",
    "--total-anneal-steps",
    "20",
    "--log-every",
    "1",
]
# The serving tests' model, and how many test users they check.
SERVING = [
    "--hidden-dims",
    "32",
    "--latent-dim",
    "16",
    "--batch-size",
    "100",
    "--total-anneal-steps",
    "200",
]
SERVING_USERS = 40


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


def shared_file(relative: str) -> pathlib.Path:
    """A file of ../shared/data; skips the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(
            f"{path} is not here (real data is not committed; set "
            "TF_MULTVAE_SHARED_DATA to the folder holding it)"
        )
    return path


@pytest.fixture
def in_process() -> list[str]:
    return list(IN_PROCESS)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> str:
    """Synthetic clicks of 1,500 users x 400 items, prepared once per run.

    Tests only read it; one that changes a dataset prepares its own.
    """
    from data_prep import pipeline

    out = tmp_path_factory.mktemp("data") / "synthetic"
    code = pipeline.main(
        [
            "--dataset",
            "synthetic",
            "--synthetic-users",
            "1500",
            "--synthetic-items",
            "400",
            "--out",
            str(out),
            *IN_PROCESS,
        ]
    )
    assert code == 0
    return str(out)


# The report tests' dataset and runs -----------------------------------------


@pytest.fixture(scope="session")
def report_dataset(tmp_path_factory) -> str:
    """A synthetic prepared dataset: 600 users, ~200 items, 60 test users."""
    from data_prep import pipeline

    out = tmp_path_factory.mktemp("report-data") / "synthetic"
    code = pipeline.main(
        [
            "--dataset",
            "synthetic",
            "--synthetic-users",
            "600",
            "--synthetic-items",
            "200",
            "--out",
            str(out),
            *IN_PROCESS,
        ]
    )
    assert code == 0
    return str(out)


def _tiny_run(tmp_path_factory, data_dir: str, model: str) -> str:
    from tf_multvae import train

    run_dir = str(tmp_path_factory.mktemp(f"report-{model}") / model)
    code = train.main(
        [
            "--dataset",
            "synthetic",
            "--model",
            model,
            "--data-dir",
            data_dir,
            "--run-dir",
            run_dir,
            "--epochs",
            "2",
            *TINY,
        ]
    )
    assert code == 0
    return run_dir


def _baseline_run(tmp_path_factory, data_dir: str, kind: str) -> str:
    from tf_multvae.baselines import command

    run_dir = str(tmp_path_factory.mktemp(f"report-{kind}") / kind)
    command.run(kind, data_dir, run_dir, l2=50.0)
    return run_dir


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory, report_dataset) -> str:
    """A 2-epoch tiny Mult-VAE^PR run on ``report_dataset``."""
    return _tiny_run(tmp_path_factory, report_dataset, "vae")


@pytest.fixture(scope="session")
def dae_run(tmp_path_factory, report_dataset) -> str:
    """A 2-epoch tiny Mult-DAE run on ``report_dataset``."""
    return _tiny_run(tmp_path_factory, report_dataset, "dae")


@pytest.fixture(scope="session")
def popularity_run(tmp_path_factory, report_dataset) -> str:
    """A popularity run on ``report_dataset``."""
    return _baseline_run(tmp_path_factory, report_dataset, "popularity")


@pytest.fixture(scope="session")
def ease_run(tmp_path_factory, report_dataset) -> str:
    """An EASE (λ = 50) run on ``report_dataset``."""
    return _baseline_run(tmp_path_factory, report_dataset, "ease")


# The serving tests' exported run --------------------------------------------


@pytest.fixture(scope="session")
def serving_run(tmp_path_factory, small_dataset) -> pathlib.Path:
    """A 2-epoch run on ``small_dataset``, exported by train itself to
    ``../models``."""
    from tf_multvae import train

    root = tmp_path_factory.mktemp("export")
    run = root / "run"
    assert (
        train.main(
            [
                "--dataset",
                "synthetic",
                "--data-dir",
                str(small_dataset),
                "--run-dir",
                str(run),
                "--epochs",
                "2",
                *SERVING,
                "--export-dir",
                str(root / "models"),
            ]
        )
        == 0
    )
    return run


@pytest.fixture(scope="session")
def saved_model(serving_run) -> pathlib.Path:
    """The version that ``train --export-dir`` wrote (top-k 100)."""
    return serving_run.parent / "models" / "1"


@pytest.fixture(scope="session")
def loaded_model(saved_model):
    """``saved_model`` loaded with tf.saved_model.load."""
    import tensorflow as tf

    return tf.saved_model.load(str(saved_model))


@pytest.fixture(scope="session")
def keras_model(serving_run):
    """The in-memory model the SavedModel was exported from."""
    import keras

    from tf_multvae import rundir

    return keras.saving.load_model(str(serving_run / rundir.BEST_MODEL))


@pytest.fixture(scope="session")
def vocab(serving_run) -> np.ndarray:
    """The raw item ids of ``serving_run``'s data, by item index."""
    from tf_multvae import datadir
    from tf_multvae import features

    config = json.loads((serving_run / "config.json").read_text())
    path = os.path.join(config["data_dir"], features.VOCAB_FILE)
    return np.array(datadir.read_vocabulary(path), dtype=object)


@pytest.fixture(scope="session")
def fold_in_users(serving_run) -> np.ndarray:
    """Fold-in items of test users: int64 [SERVING_USERS, L], -1 padded."""
    from tf_multvae import data
    from tf_multvae import features

    config = json.loads((serving_run / "config.json").read_text())
    batches = data.eval_dataset(config["data_dir"], "test", SERVING_USERS)
    return next(iter(batches))[features.FOLD_IN].numpy()


# Parallel runs (pytest-xdist, setup.cfg's ``-n``) ---------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup``: each test file is one unit of work (its
    module fixtures are made once), except the ML-1M reproductions, one
    unit each and first in the queue, so that each worker starts on one
    of these longest tests and the rest fill in around them."""
    first = []
    for item in items:
        if item.get_closest_marker("reproduction"):
            name = f"reproduction-{item.name}"
            first.append(item)
        else:
            name = item.path.stem
        item.add_marker(pytest.mark.xdist_group(name))
    rest = [item for item in items if item not in first]
    items[:] = first + rest
