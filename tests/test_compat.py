"""Runs saved before the package got its folders still load and score.

tests/fixtures/pre_move_run holds a small Mult-VAE^PR and Mult-DAE run
(best.keras, the epoch backups, a SavedModel) written by the flat-layout
code, with the scores that code gave for the test users (its README says
how it was made). Each is loaded with today's code and must score the
same.
"""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import IN_PROCESS
from conftest import REPO

from tf_multvae import config as cfg
from tf_multvae import rundir
from tf_multvae.training import callbacks as cb
from tf_multvae.training import loop

FIXTURE = REPO / "tests" / "fixtures" / "pre_move_run"
KINDS = ("vae", "dae")
ATOL = 1e-5  # oneDNN's float32 sums may differ in the last bits by CPU


@pytest.fixture(scope="module")
def expected() -> dict:
    with open(FIXTURE / "expected.json") as f:
        facts = json.load(f)
    facts["arrays"] = dict(np.load(FIXTURE / "expected.npz"))
    return facts


@pytest.mark.parametrize("kind", KINDS)
def test_best_keras_loads_and_scores_the_same(kind, expected):
    import tf_multvae.model  # noqa: F401  (registers the classes)

    model = keras.saving.load_model(FIXTURE / kind / rundir.BEST_MODEL)
    arrays = expected["arrays"]
    scores = model.score(tf.constant(arrays["fold_in"])).numpy()
    np.testing.assert_allclose(
        scores, arrays[f"{kind}_best_scores"], rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("kind", KINDS)
def test_backup_restores_the_training_state(kind, expected):
    config = rundir.read_json(FIXTURE / kind, rundir.CONFIG)
    run = cfg.RunConfig.from_json(config)
    model = loop.build_compiled_model(run, config["n_items"])
    model.optimizer.build(model.trainable_variables)
    backup = cb.EpochBackup(
        str(FIXTURE / kind / rundir.BACKUP), model, cb.NanGuard()
    )
    facts = expected["runs"][kind]
    assert backup.restore() == facts["backup_epoch"]
    assert int(model.optimizer.iterations) == facts["backup_iterations"]
    arrays = expected["arrays"]
    scores = model.score(tf.constant(arrays["fold_in"])).numpy()
    np.testing.assert_allclose(
        scores, arrays[f"{kind}_backup_scores"], rtol=0, atol=ATOL
    )


def test_saved_model_serves_the_same(expected):
    loaded = tf.saved_model.load(str(FIXTURE / "vae-export" / "1"))
    arrays = expected["arrays"]
    vocab = np.array(
        (FIXTURE / "items.txt").read_text().split("\n")[:-1], dtype=object
    )
    fold_in = arrays["fold_in"]
    ids = np.where(fold_in >= 0, vocab[np.maximum(fold_in, 0)], "")
    out = loaded.signatures["serving_default"](
        items=tf.constant(ids.astype(bytes))
    )
    np.testing.assert_array_equal(
        out["item_indices"].numpy(), arrays["export_item_indices"]
    )
    np.testing.assert_array_equal(
        out["item_ids"].numpy().astype(str), arrays["export_item_ids"]
    )
    np.testing.assert_allclose(
        out["scores"].numpy(), arrays["export_scores"], rtol=0, atol=ATOL
    )


def test_an_old_run_evaluates_to_its_own_metrics(tmp_path, expected):
    """metrics.json spelled ``ndcg@100`` then; it reads in today's names,
    and evaluating the old best.keras on the same data gives its numbers."""
    from data_prep import pipeline
    from tf_multvae.reports import evaluate

    data_dir = tmp_path / "data"
    args = [
        a for a in expected["data_prep_args"] if not a.startswith("--direct")
    ]
    assert pipeline.main([*args, "--out", str(data_dir), *IN_PROCESS]) == 0
    run_dir = tmp_path / "vae"
    shutil.copytree(FIXTURE / "vae", run_dir)
    old = rundir.read_json(run_dir, rundir.METRICS)["test"]
    assert set(old) >= {"ndcg_at_100", "recall_at_20", "recall_at_50"}
    result = evaluate.run(str(run_dir), data_dir=str(data_dir))["metrics"]
    for name in ("ndcg_at_100", "recall_at_20", "recall_at_50"):
        assert result[name]["mean"] == pytest.approx(
            old[name]["mean"], abs=1e-4
        )
    assert result["users"] == old["users"]
